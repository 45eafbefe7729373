package tunnel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/porta443/porta/internal/deadline"
	"github.com/porta443/porta/internal/masque"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2/hpack"
)

// clientFlow is one CONNECT-UDP request stream seen from the client.
type clientFlow interface {
	udpStream
	// response waits for the server's answer and returns nil for a 2xx.
	response(ctx context.Context) error
	SetWriteDeadline(t time.Time) error
	// close ends the stream, resetting it if it is not done.
	close()
}

// udpQueue is how many datagrams a flow holds for its reader; more that
// arrive while it is full are dropped, as a socket's full buffer does.
const udpQueue = 256

// udpConn is a tunneled UDP flow: a connected datagram socket whose
// datagrams ride the connection to the server (RFC 9298). Each Write sends
// one datagram, each Read returns one. The CONNECT-UDP goes out when the
// flow is dialed, and Writes before the answer go with it (on HTTP/3 as
// capsules on the stream, which cannot arrive before the request), so
// the first answer costs one round trip.
type udpConn struct {
	d      *Dialer
	s      session
	fl     clientFlow
	target string
	cancel context.CancelFunc

	in   chan *[]byte  // from datagramBufs when small enough
	done chan struct{} // closed when the flow ended; err says why
	err  error
	rdl  deadline.Deadline
	wg   sync.WaitGroup
	once sync.Once
}

// dialUDP opens a CONNECT-UDP flow to target on s, whose slot it holds
// until Close.
func (d *Dialer) dialUDP(ctx context.Context, s session, target string) (*udpConn, error) {
	fl, err := s.openUDP(ctx, target)
	if err != nil {
		d.release(s)
		return nil, err
	}
	rctx, cancel := context.WithCancel(d.ctx)
	c := &udpConn{d: d, s: s, fl: fl, target: target, cancel: cancel, in: make(chan *[]byte, udpQueue), done: make(chan struct{})}
	c.wg.Go(func() { c.readLoop(rctx) })
	return c, nil
}

// readLoop waits for the server's answer, then queues what comes until
// the flow ends.
func (c *udpConn) readLoop(ctx context.Context) {
	err := c.fl.response(ctx)
	if err == nil {
		err = receive(ctx, c.fl, c.deliver, func() { c.d.udpDropped.Add(1) })
		if err == nil {
			err = io.EOF // the server ended the flow
		}
	}
	if ctx.Err() != nil {
		err = net.ErrClosed
	}
	c.err = err
	close(c.done)
}

// datagramBufs hold the datagrams a flow queues for its reader, those
// that fit (most: a path's MTU is smaller), so that a datagram costs no
// allocation on its way through.
var datagramBufs = sync.Pool{New: func() any { b := make([]byte, 0, smallDatagram); return &b }}

const smallDatagram = 2048

func (c *udpConn) deliver(p []byte) {
	var b *[]byte
	if len(p) <= smallDatagram {
		b = datagramBufs.Get().(*[]byte)
		*b = append((*b)[:0], p...)
	} else {
		large := bytes.Clone(p)
		b = &large
	}
	select {
	case c.in <- b:
	default:
		c.d.udpDropped.Add(1)
		putDatagram(b)
	}
}

// take copies a queued datagram into p and gives its buffer back.
func take(p []byte, b *[]byte) int {
	n := copy(p, *b)
	putDatagram(b)
	return n
}

func putDatagram(b *[]byte) {
	if cap(*b) == smallDatagram {
		datagramBufs.Put(b)
	}
}

// Read returns the next datagram; one longer than p is cut to len(p), as
// a UDP socket's Read does. After the flow ended it returns why: io.EOF
// when the server ended it, a *RefusedError when it refused it.
func (c *udpConn) Read(p []byte) (int, error) {
	select {
	case b := <-c.in: // before an expired deadline or the end
		return take(p, b), nil
	default:
	}
	select {
	case b := <-c.in:
		return take(p, b), nil
	case <-c.done:
		select {
		case b := <-c.in: // what came before the end
			return take(p, b), nil
		default:
		}
		return 0, c.opErr("read", c.err)
	case <-c.rdl.Wait():
		return 0, c.opErr("read", errTimeout)
	}
}

// Write sends p as one datagram. A datagram longer than MaxUDPPayload is
// refused.
func (c *udpConn) Write(p []byte) (int, error) {
	select {
	case <-c.done:
		return 0, c.opErr("write", c.err)
	default:
	}
	if len(p) > MaxUDPPayload {
		return 0, c.opErr("write", fmt.Errorf("tunnel: %d-byte datagram: the limit is %d", len(p), MaxUDPPayload))
	}
	if err := c.fl.send(p); err != nil {
		return 0, c.opErr("write", err)
	}
	return len(p), nil
}

// Close ends the flow and gives back its stream slot.
func (c *udpConn) Close() error {
	err := net.ErrClosed
	c.once.Do(func() {
		c.cancel()
		c.fl.close()
		c.wg.Wait()
		c.d.release(c.s)
		err = nil
	})
	return err
}

func (c *udpConn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "udp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

func (c *udpConn) LocalAddr() net.Addr  { return Addr{Proto: c.s.proto(), Host: "tunnel"} }
func (c *udpConn) RemoteAddr() net.Addr { return Addr{Proto: c.s.proto(), Host: c.target} }

func (c *udpConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

func (c *udpConn) SetReadDeadline(t time.Time) error {
	c.rdl.Set(t)
	return nil
}

func (c *udpConn) SetWriteDeadline(t time.Time) error { return c.fl.SetWriteDeadline(t) }

// udpPath is the CONNECT-UDP path for target ("host:port").
func udpPath(target string) (string, error) {
	host, portStr, err := net.SplitHostPort(target)
	if err != nil {
		return "", fmt.Errorf("tunnel: %w", err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 || host == "" {
		return "", fmt.Errorf("tunnel: bad UDP target %q", target)
	}
	return masque.Path(host, uint16(port)), nil
}

var errNoUDP = errors.New("tunnel: the server does not take CONNECT-UDP")

// openUDP sends the CONNECT-UDP for target on porta's own HTTP/2 client,
// once the server's SETTINGS allow extended CONNECT (RFC 8441).
func (s *h2Session) openUDP(ctx context.Context, target string) (clientFlow, error) {
	path, err := udpPath(target)
	if err != nil {
		return nil, err
	}
	ok, err := s.c.ExtendedConnect(ctx)
	if err != nil {
		return nil, fmt.Errorf("tunnel: h2 CONNECT-UDP: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("%w over HTTP/2 (no SETTINGS_ENABLE_CONNECT_PROTOCOL)", errNoUDP)
	}
	st, err := s.c.NewStream([]hpack.HeaderField{
		{Name: ":method", Value: http.MethodConnect},
		{Name: ":protocol", Value: masque.Protocol},
		{Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: s.si.addr},
		{Name: ":path", Value: path},
		{Name: "capsule-protocol", Value: masque.CapsuleProtocolValue},
		{Name: "proxy-authorization", Value: s.si.auth, Sensitive: true},
	}, false)
	if err != nil {
		return nil, fmt.Errorf("tunnel: h2 CONNECT-UDP: %w", err)
	}
	return newCapsuleFlow(h2ClientStream{st}), nil
}

// capsuleFlow is a CONNECT-UDP flow in DATAGRAM capsules on an HTTP/2
// stream.
type capsuleFlow struct {
	*h2UDP
	st clientStream
}

func newCapsuleFlow(st clientStream) *capsuleFlow {
	write := func(b []byte) error {
		_, err := st.Write(b)
		return err
	}
	return &capsuleFlow{h2UDP: newH2UDP(st, write), st: st}
}

func (f *capsuleFlow) response(ctx context.Context) error { return f.st.response(ctx) }
func (f *capsuleFlow) SetWriteDeadline(t time.Time) error { return f.st.SetWriteDeadline(t) }
func (f *capsuleFlow) close()                             { f.st.Close() }

// openUDP sends the CONNECT-UDP for target on the HTTP/3 connection, once
// the server's SETTINGS say it takes HTTP Datagrams.
func (s *h3Session) openUDP(ctx context.Context, target string) (clientFlow, error) {
	path, err := udpPath(target)
	if err != nil {
		return nil, err
	}
	select {
	case <-s.cc.ReceivedSettings():
	case <-s.conn.Context().Done():
		return nil, fmt.Errorf("tunnel: h3 CONNECT-UDP: %w", context.Cause(s.conn.Context()))
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if st := s.cc.Settings(); !st.EnableDatagrams || !st.EnableExtendedConnect {
		return nil, fmt.Errorf("%w over HTTP/3 (no HTTP Datagrams or extended CONNECT)", errNoUDP)
	}
	rs, err := s.cc.OpenRequestStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("tunnel: h3 stream: %w", err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodConnect, "https://"+s.si.addr+path, nil)
	req.Proto = masque.Protocol
	req.URL = &url.URL{Scheme: "https", Host: s.si.addr, Path: path}
	req.Header.Set("Proxy-Authorization", s.si.auth)
	req.Header.Set(masque.CapsuleProtocolHeader, masque.CapsuleProtocolValue)
	if err := rs.SendRequestHeader(req); err != nil {
		rs.CancelRead(quic.StreamErrorCode(http3.ErrCodeRequestCanceled))
		rs.CancelWrite(quic.StreamErrorCode(http3.ErrCodeRequestCanceled))
		return nil, fmt.Errorf("tunnel: h3 CONNECT-UDP: %w", err)
	}
	st := &h3ClientStream{RequestStream: rs, answered: make(chan struct{})}
	return &h3ClientFlow{h3UDP: newH3UDP(rs, false), st: st}, nil
}

// h3ClientFlow is a CONNECT-UDP stream on an HTTP/3 connection. Until the
// server's 2xx its datagrams go as capsules on the stream.
type h3ClientFlow struct {
	*h3UDP
	st *h3ClientStream
}

func (f *h3ClientFlow) response(ctx context.Context) error {
	err := f.st.response(ctx)
	if err == nil {
		f.datagramsOn.Store(true)
	}
	return err
}
func (f *h3ClientFlow) SetWriteDeadline(t time.Time) error { return f.st.SetWriteDeadline(t) }
func (f *h3ClientFlow) close()                             { f.st.Close() }

// openUDP: net/http's client refuses a ":protocol" field (Go 1.26 checks
// header names before its HTTP/2 layer, which could send it), so there is
// no extended CONNECT through its public API.
func (s *stdSession) openUDP(ctx context.Context, target string) (clientFlow, error) {
	return nil, fmt.Errorf("%w: net/http's HTTP/2 client sends no extended CONNECT; CONNECT-UDP needs porta's own (the default) or HTTP/3", errNotSupported)
}
