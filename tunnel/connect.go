package tunnel

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
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
// serveConnect reports detached and the relay calls end when it is over.
func (h *Handler) serveConnect(w http.ResponseWriter, r *http.Request, us *user, end func()) (detached bool) {
	if r.ProtoMajor >= 2 && r.Proto != "HTTP/2.0" && r.Proto != "HTTP/3.0" {
		// Extended CONNECT (RFC 8441/9220: :protocol) is not a TCP tunnel.
		writeProxyError(w, r, h.cfg.ProxyName, fmt.Errorf("%w: extended CONNECT %q", errNotSupported, r.Proto))
		return false
	}
	target, err := h.dialShallow(r)
	if err != nil {
		h.logf(r, us, "tunnel refused", err)
		writeProxyError(w, r, h.cfg.ProxyName, err)
		return false
	}
	target.SetNoDelay(true)
	var leg clientLeg
	switch r.ProtoMajor {
	case 1:
		leg, err = hijackLeg(w)
	case 2:
		leg, err = h2Leg(w, r)
	case 3:
		leg, err = h3Leg(w)
	default:
		err = fmt.Errorf("%w: %s", errNotSupported, r.Proto)
	}
	if err != nil {
		target.Close()
		h.logf(r, us, "tunnel failed", err)
		return false
	}
	h.logf(r, us, "tunnel open", nil)
	if r.ProtoMajor == 2 {
		err = h.runRelay(leg, target, us)
		h.logf(r, us, "tunnel closed", err)
		return false
	}
	go func() {
		defer end()
		err := h.runRelay(leg, target, us)
		h.logf(r, us, "tunnel closed", err)
	}()
	return true
}

// h1Leg is a hijacked HTTP/1.1 connection.
type h1Leg struct {
	conn net.Conn
	br   *bufio.Reader // may hold bytes the client sent after CONNECT
}

func hijackLeg(w http.ResponseWriter) (clientLeg, error) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, fmt.Errorf("tunnel: hijack: %w", err)
	}
	conn.SetDeadline(time.Time{})
	if _, err := conn.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		conn.Close()
		return nil, fmt.Errorf("tunnel: writing 200: %w", err)
	}
	return &h1Leg{conn: conn, br: brw.Reader}, nil
}

func (l *h1Leg) Read(p []byte) (int, error) { return l.br.Read(p) }
func (l *h1Leg) Write(p []byte) error {
	_, err := l.conn.Write(p)
	return err
}

func (l *h1Leg) CloseWrite() bool {
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := l.conn.(closeWriter); ok {
		cw.CloseWrite() // TLS close_notify or TCP FIN; reading goes on
		return true
	}
	return false
}

func (l *h1Leg) StopRead() { l.conn.SetReadDeadline(time.Now()) }

func (l *h1Leg) Abort() {
	nc := l.conn
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetLinger(0) // a reset, not a clean close
	}
	nc.Close()
}

func (l *h1Leg) Finish() { l.conn.Close() }

// h2Stream is an HTTP/2 stream. net/http cannot end a response while still
// reading the request, so when the target finishes first the stream ends
// (END_STREAM, then the server's RST_STREAM(NO_ERROR)) and the client's
// remaining upload is dropped. A reset is raised by panicking with
// http.ErrAbortHandler from the handler goroutine, which net/http turns into
// RST_STREAM.
type h2Stream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	body    interface{ Read([]byte) (int, error) }
	aborted chan struct{}
}

func h2Leg(w http.ResponseWriter, r *http.Request) (clientLeg, error) {
	rc := http.NewResponseController(w)
	// A tunnel outlives any http.Server ReadTimeout/WriteTimeout; the
	// relay's idle timeout bounds it instead.
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return nil, fmt.Errorf("tunnel: sending 200: %w", err)
	}
	return &h2Stream{w: w, rc: rc, body: r.Body, aborted: make(chan struct{})}, nil
}

func (l *h2Stream) Read(p []byte) (int, error) { return l.body.Read(p) }

func (l *h2Stream) Write(p []byte) error {
	if _, err := l.w.Write(p); err != nil {
		return err
	}
	return l.rc.Flush()
}

func (l *h2Stream) CloseWrite() bool { return false }

func (l *h2Stream) StopRead() { l.rc.SetReadDeadline(time.Now()) }

func (l *h2Stream) Abort() {
	close(l.aborted)
	l.rc.SetReadDeadline(time.Now())
	l.rc.SetWriteDeadline(time.Now())
}

func (l *h2Stream) Finish() {
	select {
	case <-l.aborted:
		panic(http.ErrAbortHandler)
	default:
	}
}

// h3Stream is an HTTP/3 request stream taken over after the 200, which
// allows a true half-close: FIN toward the client while still reading.
type h3Stream struct {
	str *http3.Stream
}

func h3Leg(w http.ResponseWriter) (clientLeg, error) {
	hs, ok := w.(http3.HTTPStreamer)
	if !ok {
		return nil, fmt.Errorf("%w: HTTP/3 response writer without HTTPStream", errNotSupported)
	}
	w.WriteHeader(http.StatusOK)
	str, err := hs.HTTPStream() // sends the header
	if err != nil {
		return nil, fmt.Errorf("tunnel: sending 200: %w", err)
	}
	return &h3Stream{str: str}, nil
}

func (l *h3Stream) Read(p []byte) (int, error) { return l.str.Read(p) }
func (l *h3Stream) Write(p []byte) error {
	_, err := l.str.Write(p)
	return err
}
func (l *h3Stream) CloseWrite() bool {
	l.str.Close()
	return true
}
func (l *h3Stream) StopRead() { l.str.SetReadDeadline(time.Now()) }
func (l *h3Stream) Abort() {
	l.str.CancelRead(quic.StreamErrorCode(http3.ErrCodeConnectError))
	l.str.CancelWrite(quic.StreamErrorCode(http3.ErrCodeConnectError))
}
func (l *h3Stream) Finish() {
	l.str.CancelRead(quic.StreamErrorCode(http3.ErrCodeNoError)) // no-op after EOF
	l.str.Close()
}

// dialShallow dials r's target on a short-lived goroutine. Resolving and
// dialing run deep call stacks; on HTTP/2 the handler goroutine lives as
// long as the tunnel, and a stack grown here would stay with it.
func (h *Handler) dialShallow(r *http.Request) (*net.TCPConn, error) {
	type result struct {
		c   *net.TCPConn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(r.Context(), h.cfg.DialTimeout)
		defer cancel()
		c, err := h.egress.dial(ctx, r.Host, localAddr(r))
		ch <- result{c, err}
	}()
	res := <-ch
	return res.c, res.err
}
