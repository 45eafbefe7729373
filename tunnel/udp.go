package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/porta443/porta/internal/masque"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// MaxUDPPayload is the largest UDP payload a flow carries either way (an
// IPv4 datagram's limit). A DATAGRAM capsule that is longer is dropped and
// counted; over HTTP/3 datagrams, the QUIC path's datagram size is the
// limit toward the client.
const MaxUDPPayload = 65507

// UDPStats counts the CONNECT-UDP flows of a Handler.
type UDPStats struct {
	Active        int64  // flows open now
	Flows         uint64 // flows opened since start
	DatagramsUp   uint64 // client to target
	DatagramsDown uint64 // target to client
	BytesUp       uint64 // UDP payload bytes, client to target
	BytesDown     uint64
	// Dropped counts datagrams that were not delivered: longer than the
	// flow allows (a capsule over MaxUDPPayload, or larger than the
	// QUIC path's datagram size toward the client) or refused by the
	// target's socket.
	Dropped uint64
}

type udpCounters struct {
	flows              atomic.Uint64
	dgUp, dgDown       atomic.Uint64
	bytesUp, bytesDown atomic.Uint64
	dropped            atomic.Uint64
}

// UDPStats reports the Handler's CONNECT-UDP counters.
func (h *Handler) UDPStats() UDPStats {
	c := &h.udp
	h.mu.Lock()
	active := len(h.flows)
	h.mu.Unlock()
	return UDPStats{
		Active: int64(active), Flows: c.flows.Load(),
		DatagramsUp: c.dgUp.Load(), DatagramsDown: c.dgDown.Load(),
		BytesUp: c.bytesUp.Load(), BytesDown: c.bytesDown.Load(),
		Dropped: c.dropped.Load(),
	}
}

// isUDPRequest reports whether r is an extended CONNECT for connect-udp:
// HTTP/3 (quic-go) shows :protocol as r.Proto, HTTP/2 (internal/h2 and
// net/http) as the ":protocol" header.
func isUDPRequest(r *http.Request) bool {
	return r.Method == http.MethodConnect && extendedProtocol(r) == masque.Protocol
}

// extendedProtocol is r's :protocol (RFC 8441, RFC 9220), or "".
func extendedProtocol(r *http.Request) string {
	if r.ProtoMajor == 3 && r.Proto != "HTTP/3.0" {
		return r.Proto
	}
	if r.ProtoMajor == 2 {
		return r.Header.Get(":protocol")
	}
	return ""
}

// udpLeg is the client's side of one CONNECT-UDP flow on the server.
type udpLeg struct {
	udpStream
	stop func() // makes a blocked read of the capsules return
}

// serveUDP relays an authenticated CONNECT-UDP (RFC 9298) until the client
// ends its request stream, a side fails, the flow sits idle for the UDP
// idle timeout, or the Handler closes. It runs on the handler's goroutine
// for the life of the flow.
func (h *Handler) serveUDP(w http.ResponseWriter, r *http.Request, us *user) {
	target, err := masque.Target(r.URL.Path)
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrBadTarget, err)
		h.logf(r, us, "udp flow refused", err)
		writeProxyError(w, r, h.cfg.ProxyName, err)
		return
	}
	if err := us.acquireFlow(); err != nil {
		h.logf(r, us, "udp flow refused", err)
		writeProxyError(w, r, h.cfg.ProxyName, err)
		return
	}
	defer us.releaseFlow()
	conn, err := dialShallow(h, r, func(ctx context.Context) (*net.UDPConn, error) {
		return h.egress.dialUDP(ctx, target, localAddr(r))
	})
	if err != nil {
		h.logf(r, us, "udp flow refused", err)
		writeProxyError(w, r, h.cfg.ProxyName, err)
		return
	}
	defer conn.Close()
	w.Header().Set(masque.CapsuleProtocolHeader, masque.CapsuleProtocolValue)
	var leg *udpLeg
	switch r.ProtoMajor {
	case 2:
		leg, err = newH2UDPLeg(w, r)
	case 3:
		leg, err = newH3UDPLeg(w)
	default:
		err = fmt.Errorf("%w: CONNECT-UDP over %s", errNotSupported, r.Proto)
	}
	if err != nil {
		h.logf(r, us, "udp flow failed", err)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	fl := &udpTunnel{h: h, us: us, leg: leg, conn: conn, cancel: cancel}
	if !h.trackFlow(fl) {
		fl.end(errClosed)
		return
	}
	defer h.untrackFlow(fl)
	h.logf(r, us, "udp flow open", nil)
	err = fl.run(ctx)
	h.logf(r, us, "udp flow closed", err)
}

// udpTunnel is one CONNECT-UDP flow on the server.
type udpTunnel struct {
	h    *Handler
	us   *user
	leg  *udpLeg
	conn *net.UDPConn

	idle   idleTimer
	once   sync.Once
	cause  error
	cancel context.CancelFunc
}

// run relays until the flow ends, and returns why (nil: the client
// ended it).
func (fl *udpTunnel) run(ctx context.Context) error {
	c := &fl.h.udp
	c.flows.Add(1)
	defer fl.end(nil)
	fl.idle.start(fl.h.cfg.UDPIdleTimeout, func() { fl.end(errIdle) })
	defer fl.idle.stop()

	var wg sync.WaitGroup
	wg.Go(fl.download)
	err := receive(ctx, fl.leg, fl.up, func() { c.dropped.Add(1) })
	fl.end(err)
	wg.Wait()
	return fl.cause
}

// end ends the flow once, for cause: the target's socket closes (ending
// the download) and the client's reads stop.
func (fl *udpTunnel) end(cause error) {
	fl.once.Do(func() {
		fl.cause = cause
		fl.cancel()
		fl.conn.Close()
		fl.leg.stop()
	})
}

func (fl *udpTunnel) touch() { fl.idle.touch() }

// up sends one datagram from the client to the target. A datagram the
// socket refuses (too long, or an ICMP error from an earlier one) is
// dropped: UDP goes on.
func (fl *udpTunnel) up(p []byte) {
	c := &fl.h.udp
	if _, err := fl.conn.Write(p); err != nil {
		c.dropped.Add(1)
		return
	}
	fl.touch()
	c.dgUp.Add(1)
	c.bytesUp.Add(uint64(len(p)))
	fl.us.c.bytesUp.Add(uint64(len(p)))
}

// download sends the target's datagrams to the client until the socket
// closes or the client's side fails.
func (fl *udpTunnel) download() {
	c := &fl.h.udp
	buf := make([]byte, MaxUDPPayload+1)
	for {
		n, err := fl.conn.Read(buf)
		if errors.Is(err, syscall.ECONNREFUSED) {
			continue // an ICMP error for an earlier datagram: UDP goes on
		}
		if err != nil {
			fl.end(nil) // closed by end, or the socket failed
			return
		}
		if n > MaxUDPPayload {
			c.dropped.Add(1)
			continue
		}
		if err := fl.leg.send(buf[:n]); err != nil {
			fl.end(err)
			return
		}
		fl.touch()
		c.dgDown.Add(1)
		c.bytesDown.Add(uint64(n))
		fl.us.c.bytesDown.Add(uint64(n))
	}
}

// CloseUDP ends every CONNECT-UDP flow; the client reads EOF. A server
// shutting down calls it first: unlike a TCP tunnel, a flow has no end of
// its own to wait for, and its client dials again, on another server if
// it has one, with its next datagram.
func (h *Handler) CloseUDP() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closeUDPLocked()
}

func (h *Handler) closeUDPLocked() {
	for fl := range h.flows {
		fl.end(errClosed)
	}
}

func (h *Handler) trackFlow(fl *udpTunnel) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.flows[fl] = struct{}{}
	return true
}

func (h *Handler) untrackFlow(fl *udpTunnel) {
	h.mu.Lock()
	delete(h.flows, fl)
	h.mu.Unlock()
}

// newH2UDPLeg answers 200 and carries the flow in DATAGRAM capsules on
// the HTTP/2 stream, both ways.
func newH2UDPLeg(w http.ResponseWriter, r *http.Request) (*udpLeg, error) {
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return nil, fmt.Errorf("tunnel: sending 200: %w", err)
	}
	write := func(b []byte) error {
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	return &udpLeg{
		udpStream: newH2UDP(r.Body, write),
		stop:      func() { rc.SetReadDeadline(time.Now()) },
	}, nil
}

// newH3UDPLeg answers 200 and carries the flow in HTTP Datagrams, with
// capsules on the stream for what a QUIC datagram cannot carry.
func newH3UDPLeg(w http.ResponseWriter) (*udpLeg, error) {
	str, err := takeH3Stream(w)
	if err != nil {
		return nil, err
	}
	return &udpLeg{
		udpStream: newH3UDP(str, true),
		stop: func() {
			str.CancelRead(quic.StreamErrorCode(http3.ErrCodeNoError))
			str.Close()
		},
	}, nil
}
