package tunnel

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/porta443/porta/internal/copybuf"
)

// tunnelConn is a tunneled TCP connection. Its CONNECT is sent lazily,
// by the first Write (which carries the first bytes along) or Read, so
// DialContext need not wait a round trip.
type tunnelConn struct {
	d      *Dialer
	target string
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	s        session       // the stream's slot is on it; the starter's while starting
	starting bool          // a caller of stream is opening it, without mu
	started  chan struct{} // closed when st and startErr are set
	st       clientStream  // nil until started
	startErr error
	rdl, wdl time.Time // deadlines set before the stream existed
	closed   bool
}

func newTunnelConn(d *Dialer, s session, target string) *tunnelConn {
	ctx, cancel := context.WithCancel(d.ctx)
	return &tunnelConn{d: d, s: s, target: target, ctx: ctx, cancel: cancel, started: make(chan struct{})}
}

// maxOpenTries bounds how often a stream that was not processed is opened
// again on another connection.
const maxOpenTries = 4

// stream returns the started stream, starting it if need be. The first
// caller opens it without holding c.mu (opening may wait for a connection
// to be made); the others wait for it, or for Close.
func (c *tunnelConn) stream() (clientStream, error) {
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return nil, net.ErrClosed
	case c.starting:
		c.mu.Unlock()
		select {
		case <-c.started:
		case <-c.ctx.Done():
			return nil, net.ErrClosed
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.st, c.startErr
	case c.st != nil || c.startErr != nil:
		defer c.mu.Unlock()
		return c.st, c.startErr
	}
	c.starting = true
	s := c.s
	c.mu.Unlock()

	st, err := s.open(c.ctx, c.target)
	for try := 1; errors.Is(err, errNotProcessed) && try < maxOpenTries; try++ {
		// The connection ended, began to go away or filled up (others
		// took its last streams) after DialContext chose it, and nothing
		// was sent: again, on a live one.
		again, serr := c.d.session(c.ctx)
		if serr != nil {
			break
		}
		c.d.release(s)
		s = again
		st, err = s.open(c.ctx, c.target)
	}

	c.mu.Lock()
	closed := c.closed
	if closed {
		// Close came meanwhile and left the stream and the slot to us.
		c.st, c.startErr = nil, net.ErrClosed
	} else {
		c.st, c.startErr = st, err
		if st != nil && !c.rdl.IsZero() {
			st.SetReadDeadline(c.rdl)
		}
		if st != nil && !c.wdl.IsZero() {
			st.SetWriteDeadline(c.wdl)
		}
	}
	c.s, c.starting = s, false
	close(c.started)
	c.mu.Unlock()
	if closed {
		if st != nil {
			st.Close()
		}
		c.d.release(s)
		return nil, net.ErrClosed
	}
	return st, err
}

func (c *tunnelConn) Read(p []byte) (int, error) {
	st, err := c.stream()
	if err != nil {
		return 0, c.opErr("read", err)
	}
	if err := st.response(context.Background()); err != nil {
		return 0, c.opErr("read", err)
	}
	n, err := st.Read(p)
	if err != nil && err != io.EOF {
		err = c.opErr("read", err)
	}
	return n, err
}

// CopyChunks is Read for copybuf.Copy: over HTTP/2 the data goes to dst
// from the chunks it was received into. Other streams answer
// errors.ErrUnsupported before reading anything.
func (c *tunnelConn) CopyChunks(dst func([]byte) error) (int64, error) {
	st, err := c.stream()
	if err != nil {
		return 0, c.opErr("read", err)
	}
	cs, ok := st.(copybuf.Chunker)
	if !ok {
		return 0, errors.ErrUnsupported
	}
	if err := st.response(context.Background()); err != nil {
		return 0, c.opErr("read", err)
	}
	var dstErr error
	n, err := cs.CopyChunks(func(p []byte) error {
		dstErr = dst(p)
		return dstErr
	})
	if err != nil && err != dstErr {
		err = c.opErr("read", err)
	}
	return n, err
}

// WriteTo copies what the target sends to w until EOF, for io.Copy:
// through copybuf.Copy, so over HTTP/2 from the chunks it was received
// into (CopyChunks), over HTTP/3 through the Dialer's buffer pool.
func (c *tunnelConn) WriteTo(w io.Writer) (int64, error) {
	return copybuf.Copy(copybuf.To(w), c, &c.d.pool, nil)
}

func (c *tunnelConn) Write(p []byte) (int, error) {
	st, err := c.stream()
	if err != nil {
		return 0, c.opErr("write", err)
	}
	n, err := st.Write(p)
	if err != nil {
		err = c.opErr("write", err)
	}
	return n, err
}

// CloseWrite half-closes the connection: the target reads EOF, and
// reading from it goes on.
func (c *tunnelConn) CloseWrite() error {
	st, err := c.stream()
	if err != nil {
		return c.opErr("close", err)
	}
	return st.CloseWrite()
}

func (c *tunnelConn) Close() error {
	c.cancel() // first: it unblocks a stream still being opened
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.closed = true
	if c.starting {
		c.mu.Unlock()
		return nil // the stream's starter closes it and releases the slot
	}
	st, s := c.st, c.s
	c.mu.Unlock()
	c.d.release(s)
	if st != nil {
		return st.Close()
	}
	return nil
}

func (c *tunnelConn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// Addr is the address of either end of a tunneled connection.
type Addr struct {
	Proto string // "h2" or "h3"
	Host  string // host:port
}

func (a Addr) Network() string { return "tunnel+" + a.Proto }
func (a Addr) String() string  { return a.Host }

func (c *tunnelConn) LocalAddr() net.Addr  { return Addr{Proto: c.proto(), Host: "tunnel"} }
func (c *tunnelConn) RemoteAddr() net.Addr { return Addr{Proto: c.proto(), Host: c.target} }

// proto is the transport of the session the connection is on; opErr calls
// it only once c.mu is let go.
func (c *tunnelConn) proto() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.s.proto()
}

func (c *tunnelConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

func (c *tunnelConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rdl = t
	if c.st != nil {
		return c.st.SetReadDeadline(t)
	}
	return nil
}

func (c *tunnelConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wdl = t
	if c.st != nil {
		return c.st.SetWriteDeadline(t)
	}
	return nil
}

// Established sends the CONNECT if it has not gone yet and waits for the
// server's answer: nil once the target is connected, or why not (a
// *RefusedError when the server refused), or ctx's error when it ends
// first. Callers that must answer their own client with the tunnel's
// outcome (SOCKS without fast open) use it; they close the connection
// when it fails (over HTTP/3 a ctx that ended has ended the stream).
func (c *tunnelConn) Established(ctx context.Context) error {
	st, err := c.stream()
	if err != nil {
		return c.opErr("dial", err)
	}
	if err := st.response(ctx); err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return ctx.Err()
		}
		return c.opErr("dial", err)
	}
	return nil
}
