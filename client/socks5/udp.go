package socks5

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// udpBufferSize holds the largest UDP datagram there is.
const udpBufferSize = 64 << 10

// relayReadBuffer is the relay socket's receive buffer: room for a
// client's bursts (a QUIC flight, a window of a transfer) while the relay
// is busy writing to the flows.
const relayReadBuffer = 1 << 20

// association is one UDP ASSOCIATE: a relay socket that takes the client's
// datagrams, and a flow per target, for as long as the control connection
// lasts.
type association struct {
	s      *Server
	ctx    context.Context // canceled at teardown: it ends the dials
	cancel context.CancelFunc
	log    *slog.Logger
	pc     *net.UDPConn
	start  time.Time // the flows' idle times count from it, on the monotonic clock
	client netip.Addr
	hint   netip.AddrPort // the request's DST: where the client will send from; a zero part matches any
	// peer is the client's address, locked by the first datagram that
	// readClient accepts. It is set before the first flow is made and
	// never changes after, so the flows read it without a lock.
	peer netip.AddrPort
	wg   sync.WaitGroup // readClient, the control connection's reader and every flow

	mu     sync.Mutex
	flows  map[string]*udpFlow // by DST as the client sent it
	closed bool
}

// associate serves a UDP ASSOCIATE request until its control connection c
// closes; c is closed by the caller.
func (s *Server) associate(ctx context.Context, c net.Conn, q request, log *slog.Logger) {
	if s.cfg.DialUDP == nil {
		log.Debug("socks5: udp associate: no DialUDP")
		s.fail(c, ReplyCommandNotSupported)
		return
	}
	local, err1 := netip.ParseAddrPort(c.LocalAddr().String())
	remote, err2 := netip.ParseAddrPort(c.RemoteAddr().String())
	if err := errors.Join(err1, err2); err != nil {
		log.Debug("socks5: udp associate: not an IP connection", "err", err)
		s.fail(c, ReplyGeneralFailure)
		return
	}
	// The relay listens where the client reached us: it can reach that.
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local.Addr().Unmap(), 0)))
	if err != nil {
		log.Debug("socks5: udp associate: relay socket", "err", err)
		s.fail(c, ReplyGeneralFailure)
		return
	}
	pc.SetReadBuffer(relayReadBuffer) // best effort: a smaller buffer still works
	bound := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	if _, err := c.Write(appendReply(nil, ReplySucceeded, bound)); err != nil {
		pc.Close()
		log.Debug("socks5: reply", "err", err)
		return
	}
	c.SetDeadline(time.Time{})

	hint, _ := netip.ParseAddr(q.host) // a name: invalid, matches any
	a := &association{
		s:      s,
		log:    log,
		pc:     pc,
		start:  time.Now(),
		client: remote.Addr().Unmap(),
		hint:   netip.AddrPortFrom(hint.Unmap(), q.port),
		flows:  make(map[string]*udpFlow),
	}
	a.ctx, a.cancel = context.WithCancel(ctx)
	s.udp.associations.Add(1)
	s.udp.activeAssociations.Add(1)
	defer s.udp.activeAssociations.Add(-1)
	log.Debug("socks5: udp associate", "relay", bound.String())
	a.run(c)
}

// run relays until the control connection c or the relay socket ends,
// then tears everything down and waits for every goroutine.
func (a *association) run(c net.Conn) {
	controlDone := make(chan struct{})
	a.wg.Go(func() {
		io.Copy(io.Discard, c) // nothing more is due; EOF or an error ends the association
		close(controlDone)
	})
	relayDone := make(chan struct{})
	a.wg.Go(func() {
		a.readClient()
		close(relayDone)
	})
	tick := time.NewTicker(max(a.s.cfg.UDPIdleTimeout/2, time.Millisecond))
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-controlDone:
			done = true
		case <-relayDone:
			done = true
		case <-a.ctx.Done():
			done = true
		case <-tick.C:
			a.closeIdle()
		}
	}
	a.close(c)
	a.wg.Wait()
}

// close ends the dials, the relay socket, the control connection and
// every flow.
func (a *association) close(c net.Conn) {
	a.cancel()
	a.pc.Close()
	c.Close()
	var conns []net.Conn
	a.mu.Lock()
	a.closed = true
	for _, f := range a.flows {
		if f.conn != nil { // nil: still dialing, and its goroutine closes what it gets
			conns = append(conns, f.conn)
		}
	}
	a.flows = nil
	a.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// readClient reads the client's datagrams until the relay socket closes.
func (a *association) readClient() {
	buf := make([]byte, udpBufferSize)
	for {
		n, from, err := a.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				a.log.Debug("socks5: udp relay socket", "err", err)
			}
			return
		}
		a.fromClient(buf[:n], netip.AddrPortFrom(from.Addr().Unmap(), from.Port()))
	}
}

// fromClient passes a datagram from the client to its target's flow,
// making the flow if there is none, or drops it.
func (a *association) fromClient(d []byte, from netip.AddrPort) {
	counts := &a.s.udp
	if !a.accepts(from) {
		counts.drop(DropWrongSource)
		return
	}
	dst, data, err := splitUDP(d)
	if err != nil {
		if errors.Is(err, errUDPFragmented) {
			counts.drop(DropFragmented)
		} else {
			counts.drop(DropBadHeader)
		}
		return
	}
	if !a.peer.IsValid() {
		a.peer = from
	}
	a.mu.Lock()
	f := a.flows[string(dst)]
	switch {
	case f == nil:
		a.mu.Unlock()
		a.open(dst, data)
		return
	case !f.ready:
		queued := f.enqueue(data)
		a.mu.Unlock()
		if !queued {
			counts.drop(DropDialing)
		}
		return
	}
	conn := f.conn
	a.mu.Unlock()
	a.toTarget(f, conn, data)
}

// accepts reports whether a datagram from is the client's: from its
// locked address, or before the lock, from its IP and from the address
// its request named.
func (a *association) accepts(from netip.AddrPort) bool {
	if a.peer.IsValid() {
		return from == a.peer
	}
	ip, port := a.hint.Addr(), a.hint.Port()
	return from.Addr() == a.client &&
		(!ip.IsValid() || ip.IsUnspecified() || ip == from.Addr()) &&
		(port == 0 || port == from.Port())
}

// closeIdle closes the flows that saw no datagram for UDPIdleTimeout.
func (a *association) closeIdle() {
	now := time.Since(a.start)
	var idle []net.Conn
	a.mu.Lock()
	for key, f := range a.flows {
		if f.ready && now-time.Duration(f.last.Load()) >= a.s.cfg.UDPIdleTimeout {
			delete(a.flows, key)
			idle = append(idle, f.conn)
		}
	}
	a.mu.Unlock()
	for _, c := range idle {
		c.Close() // its flow's Read fails, and the flow ends
	}
}
