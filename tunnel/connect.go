package tunnel

import (
	"context"
	"fmt"
	"net"
	"net/http"
)

// serveConnect tunnels an authenticated CONNECT. The target is dialed
// before the client's first bytes are read: whatever the client sent after
// its CONNECT waits in flow-control windows (or the HTTP/1 buffer) until the
// target answers.
//
// On HTTP/1.1 (hijacked) and HTTP/3 (stream taken over) the relay no longer
// needs the handler, so it runs on a goroutine of its own, owned by the
// Handler, and the handler returns: its stack, grown deep by resolving and
// dialing, is freed rather than held for the life of an idle tunnel. Then
// serveConnect reports detached, and the relay releases the tunnel's slot
// when it is over. On HTTP/2 it returns the relay, which does the same, for
// the handler's goroutine to run (see ServeHTTP).
func (h *Handler) serveConnect(w http.ResponseWriter, r *http.Request, us *user) (rl *relay, detached bool) {
	if p := extendedProtocol(r); p != "" {
		// Extended CONNECT (RFC 8441/9220: :protocol) is not a TCP tunnel;
		// connect-udp went to serveUDP.
		writeProxyError(w, r, h.cfg.ProxyName, fmt.Errorf("%w: extended CONNECT %q", errNotSupported, p))
		return nil, false
	}
	target, err := dialShallow(h, r, func(ctx context.Context) (*net.TCPConn, error) {
		return h.egress.dial(ctx, r.Host, localAddr(r))
	})
	if err != nil {
		h.logf(r, us, "tunnel refused", err)
		writeProxyError(w, r, h.cfg.ProxyName, err)
		return nil, false
	}
	target.SetNoDelay(true)
	var leg clientLeg
	switch r.ProtoMajor {
	case 1:
		leg, err = hijackLeg(w)
	case 2:
		leg, err = newH2Leg(w, r)
	case 3:
		leg, err = newH3Leg(w)
	default:
		err = fmt.Errorf("%w: %s", errNotSupported, r.Proto)
	}
	if err != nil {
		target.Close()
		h.logf(r, us, "tunnel failed", err)
		return nil, false
	}
	h.logf(r, us, "tunnel open", nil)
	rl, err = h.startRelay(leg, target, us, r)
	if err != nil {
		h.logf(r, us, "tunnel closed", err)
		return nil, false
	}
	if r.ProtoMajor == 2 {
		return rl, false
	}
	go rl.run()
	return nil, true
}

// dialShallow dials r's target with dial on a short-lived goroutine.
// Resolving and dialing run deep call stacks; on HTTP/2 the handler
// goroutine lives as long as the tunnel (a UDP flow's, on either
// transport), and a stack grown here would stay with it.
//
// The dial's context is not a child of the request's: a child would leave
// a map behind in the request's context for as long as the tunnel lasts.
// The request's end (a reset stream) still cancels the dial.
func dialShallow[C net.Conn](h *Handler, r *http.Request, dial func(ctx context.Context) (C, error)) (C, error) {
	type result struct {
		c   C
		err error
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.cfg.DialTimeout)
	defer cancel()
	ch := make(chan result, 1)
	go func() {
		c, err := dial(ctx)
		ch <- result{c, err}
	}()
	select {
	case res := <-ch:
		return res.c, res.err
	case <-r.Context().Done():
		cancel()
		if res := <-ch; res.err == nil {
			res.c.Close()
		}
		var none C
		return none, r.Context().Err()
	}
}
