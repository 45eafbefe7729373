package client

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/miekg/dns"
	"github.com/porta443/porta/doh"
)

// maxSlowQueries bounds the UDP queries answered off the read loop at once
// (local records, bootstrap names, cache misses waiting on the tunnel).
const maxSlowQueries = 256

// dnsUDP serves the local resolver on a UDP socket. Fresh cache hits are
// answered in the read loop itself, straight from the resolver's wire form,
// with buffers it reuses: no goroutine, no allocation, and on Linux a batch
// of datagrams per system call each way (dnsudp_linux.go). Everything else
// goes to the handler in a goroutine, at most maxSlowQueries at once. Past that,
// queries are dropped (as unbound does when its request list is full, and
// dnsmasq past its concurrent queries): the asker's retry after a timeout is
// the back-off, the loop spends nothing on the overload, and no SERVFAIL is
// given for a name that the queries in flight may answer a moment later.
type dnsUDP struct {
	conn     *net.UDPConn
	resolver *doh.Resolver
	handler  *dnsHandler
	log      *slog.Logger

	slow chan struct{} // a slot per slow query in flight
	wg   sync.WaitGroup
	done chan struct{} // closed when serve has returned
}

func newDNSUDP(conn *net.UDPConn, resolver *doh.Resolver, handler *dnsHandler, log *slog.Logger) *dnsUDP {
	return &dnsUDP{
		conn: conn, resolver: resolver, handler: handler, log: log,
		slow: make(chan struct{}, maxSlowQueries),
		done: make(chan struct{}),
	}
}

// serve reads queries until the socket is closed, then waits for the slow
// queries to be answered.
func (s *dnsUDP) serve() error { return s.serveWith(s.readLoop) }

// serveWith is serve with the read loop given (the tests run readOne on
// Linux too).
func (s *dnsUDP) serveWith(loop func() error) error {
	defer close(s.done)
	defer s.wg.Wait()
	err := loop()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// readOne is the read loop one datagram at a time, with the standard
// library's calls: the loop on systems other than Linux.
func (s *dnsUDP) readOne() error {
	buf := make([]byte, doh.MaxMessageSize)
	var out []byte
	for {
		n, addr, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return err
		}
		msg := buf[:n]
		if !isQuery(msg) {
			continue
		}
		ans, size, ok := s.resolver.AppendCachedUDP(out[:0], msg)
		if ok {
			out = ans
			if _, err := s.conn.WriteToUDPAddrPort(ans, addr); err != nil {
				s.log.Debug("dns: write answer", "err", err)
			}
			continue
		}
		s.goSlow(msg, size, addr)
	}
}

// isQuery reports whether msg can be a query. Anything else is dropped:
// an answer to it could be used to reflect.
func isQuery(msg []byte) bool {
	return len(msg) >= 12 && msg[2]&0x80 == 0
}

// goSlow answers msg in a goroutine of its own when a slot is free, and
// drops it otherwise. msg is copied.
func (s *dnsUDP) goSlow(msg []byte, size int, addr netip.AddrPort) {
	select {
	case s.slow <- struct{}{}:
	default:
		s.log.Debug("dns: too many UDP queries waiting, dropped one")
		return
	}
	q := append([]byte(nil), msg...)
	s.wg.Go(func() {
		defer func() { <-s.slow }()
		s.answerSlow(q, size, addr)
	})
}

// answerSlow answers q through the handler, as miekg/dns's server would:
// FORMERR or NOTIMP for what its default accept function rejects or what
// does not unpack, and the answer truncated to the asker's size.
func (s *dnsUDP) answerSlow(msg []byte, size int, addr netip.AddrPort) {
	hdr := dns.Header{
		Id:      binary.BigEndian.Uint16(msg),
		Bits:    binary.BigEndian.Uint16(msg[2:]),
		Qdcount: binary.BigEndian.Uint16(msg[4:]),
		Ancount: binary.BigEndian.Uint16(msg[6:]),
		Nscount: binary.BigEndian.Uint16(msg[8:]),
		Arcount: binary.BigEndian.Uint16(msg[10:]),
	}
	var resp *dns.Msg
	q := new(dns.Msg)
	switch action := dns.DefaultMsgAcceptFunc(hdr); {
	case action == dns.MsgIgnore:
		return
	case action == dns.MsgAccept && q.Unpack(msg) == nil:
		resp = s.handler.resolve(q)
		resp.Truncate(size)
	default:
		resp = &dns.Msg{MsgHdr: dns.MsgHdr{Id: hdr.Id, Response: true, Rcode: dns.RcodeFormatError}}
		if action == dns.MsgRejectNotImplemented {
			resp.Opcode, resp.Rcode = int(hdr.Bits>>11)&0xF, dns.RcodeNotImplemented
		}
	}
	ans, err := resp.Pack()
	if err == nil {
		_, err = s.conn.WriteToUDPAddrPort(ans, addr)
	}
	if err != nil {
		s.log.Debug("dns: write answer", "err", err)
	}
}

// shutdown closes the socket, so that serve returns once the slow queries
// are answered, and waits for that until ctx ends.
func (s *dnsUDP) shutdown(ctx context.Context) {
	s.conn.Close()
	select {
	case <-s.done:
	case <-ctx.Done():
	}
}
