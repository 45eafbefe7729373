// Package coalesce gathers the small writes made to a TCP connection into
// fewer, larger ones: Nagle's algorithm in user space, without its wait for
// an ACK.
//
// net/http's HTTP/2 server writes and flushes each response as soon as its
// handler is done, so a DoH server answering cache misses, whose answers
// come back from upstream one at a time, sends one TLS record in one TCP
// segment per answer: a write system call for each, and a wake-up, a read
// and a decryption for each at the client. Here a small write is copied to
// a buffer and a goroutine writes the buffer out after letting the
// goroutines that are ready run first (runtime.Gosched), so that answers
// finished in the same moment leave in one write. On an idle server
// nothing else is ready and the write goes out at once; writes of
// DirectSize and more go out at once too, after what is pending, in one
// writev.
package coalesce

import (
	"errors"
	"net"
	"os"
	"runtime"
	"sync"
	"time"
)

const (
	// DirectSize is the size from which a write is not copied but written
	// at once, together with what is pending.
	DirectSize = 4 << 10
	// maxPending bounds what is held for the background write; past it a
	// write waits for the socket, and so for a reader that does not read.
	maxPending = 64 << 10
)

// closeFlush bounds how long Close waits to write what is pending to a peer
// that does not read, as crypto/tls bounds its close_notify. A variable for
// the tests.
var closeFlush = 5 * time.Second

// Listener wraps the connections a TCP listener accepts in Conns. Its
// buffers are shared by those connections and held only while a write
// is pending.
type Listener struct {
	net.Listener
	bufs sync.Pool // of *[]byte
}

// NewListener returns a Listener accepting from ln.
func NewListener(ln net.Listener) *Listener {
	return &Listener{Listener: ln}
}

// Accept waits for a connection and returns it as a *Conn.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &Conn{Conn: c, bufs: &l.bufs}, nil
}

// Conn is a connection whose small writes are coalesced. Reads pass
// through. A Write that returns nil has its bytes queued in order; an error
// from writing them in the background is returned by the next Write and
// every one after it. Writes are meant to come one at a time, as
// crypto/tls makes them.
type Conn struct {
	net.Conn
	bufs *sync.Pool

	wmu sync.Mutex     // held while writing to the socket, so that writes stay in order
	wg  sync.WaitGroup // the background writer

	mu       sync.Mutex
	pending  *[]byte   // bytes queued for the background writer; nil when none
	flushing bool      // the background writer is running
	err      error     // sticky: the first failed write
	deadline time.Time // the write deadline, checked by queued writes
	abort    bool      // SetLinger(0): Close drops what is pending
	closed   bool
}

// Write queues p for the background writer when it is small and writes it
// at once, after anything pending, when it is not.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if err := c.writeErr(); err != nil {
		c.mu.Unlock()
		return 0, err
	}
	if len(p) < DirectSize && (c.pending == nil || len(*c.pending)+len(p) <= maxPending) {
		if c.pending == nil {
			c.pending = c.getBuf()
		}
		*c.pending = append(*c.pending, p...)
		if !c.flushing {
			c.flushing = true
			c.wg.Add(1)
			go c.flush()
		}
		c.mu.Unlock()
		return len(p), nil
	}
	c.mu.Unlock()

	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	b := c.takePending()
	err := c.writeErr()
	c.mu.Unlock()
	defer c.putBuf(b)
	if err != nil {
		return 0, err
	}
	if b == nil {
		n, err := c.Conn.Write(p)
		c.failed(err)
		return n, err
	}
	bufs := net.Buffers{*b, p}
	n, err := bufs.WriteTo(c.Conn) // one writev
	c.failed(err)
	return max(int(n)-len(*b), 0), err
}

// writeErr is the sticky error, or why no write may be made now. c.mu is
// held.
func (c *Conn) writeErr() error {
	switch {
	case c.err != nil:
		return c.err
	case c.closed:
		return net.ErrClosed
	case !c.deadline.IsZero() && !time.Now().Before(c.deadline):
		return os.ErrDeadlineExceeded
	}
	return nil
}

// failed makes err, if any, the error of every later write.
func (c *Conn) failed(err error) {
	if err == nil {
		return
	}
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
}

// flush is the background writer: it writes what is pending until nothing
// is, letting the other goroutines that are ready add to the batch first.
func (c *Conn) flush() {
	defer c.wg.Done()
	runtime.Gosched()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for {
		c.mu.Lock()
		b := c.takePending()
		if b == nil || c.err != nil || c.abort {
			c.flushing = false
			c.mu.Unlock()
			c.putBuf(b)
			return
		}
		c.mu.Unlock()
		_, err := c.Conn.Write(*b)
		c.putBuf(b)
		c.failed(err)
	}
}

// takePending returns the pending buffer and leaves none. c.mu is held.
func (c *Conn) takePending() *[]byte {
	b := c.pending
	c.pending = nil
	return b
}

func (c *Conn) getBuf() *[]byte {
	if b, ok := c.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, DirectSize)
	return &b
}

func (c *Conn) putBuf(b *[]byte) {
	if b == nil || cap(*b) > maxPending+DirectSize {
		return
	}
	*b = (*b)[:0]
	c.bufs.Put(b)
}

// Flush writes what is pending now. It returns the error of a write that
// failed before, if any.
func (c *Conn) Flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	b := c.takePending()
	err := c.err
	c.mu.Unlock()
	defer c.putBuf(b)
	if err != nil || b == nil {
		return err
	}
	_, err = c.Conn.Write(*b)
	c.failed(err)
	return err
}

// Close writes what is pending, waiting at most 5 s, then closes the connection. After SetLinger(0) it drops what is
// pending and closes at once. It waits for the background writer.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.closed = true // later writes fail; what is queued already goes out
	flush := !c.abort && c.err == nil
	c.mu.Unlock()
	var err error
	if flush {
		// Queued bytes were accepted as a socket accepts them, so they
		// go out whatever the write deadline says (crypto/tls sets it to
		// now after its close_notify), but within closeFlush; a write
		// in progress ends by then too.
		c.Conn.SetWriteDeadline(time.Now().Add(closeFlush))
		err = c.Flush()
	}
	c.mu.Lock()
	c.putBuf(c.takePending())
	c.mu.Unlock()
	err = errors.Join(err, c.Conn.Close())
	c.wg.Wait()
	return err
}

// CloseWrite writes what is pending, then shuts down the writing side.
func (c *Conn) CloseWrite() error {
	if err := c.Flush(); err != nil {
		return err
	}
	cw, ok := c.Conn.(interface{ CloseWrite() error })
	if !ok {
		return errors.New("coalesce: connection cannot half-close")
	}
	return cw.CloseWrite()
}

// SetLinger passes through to the connection beneath (a *net.TCPConn,
// or a wrapper of one that has SetLinger); SetLinger(0) also makes Close
// drop what is pending, for a reset rather than a clean close.
func (c *Conn) SetLinger(sec int) error {
	c.mu.Lock()
	c.abort = sec == 0
	c.mu.Unlock()
	tc, ok := c.Conn.(interface{ SetLinger(int) error })
	if !ok {
		return errors.New("coalesce: not a TCP connection")
	}
	return tc.SetLinger(sec)
}

// SetDeadline sets both deadlines, as SetReadDeadline and SetWriteDeadline.
func (c *Conn) SetDeadline(t time.Time) error {
	return errors.Join(c.Conn.SetReadDeadline(t), c.SetWriteDeadline(t))
}

// SetWriteDeadline sets the deadline for writes. Queued writes check it when
// they are made, and the background write and Close's last write are bound
// by it, with one exception: a deadline that has passed already, set while
// writes are queued, fails every later write but gives the queued ones
// closeFlush to go out, as a socket sends what it has accepted. crypto/tls
// sets the deadline to now right after queueing its close_notify.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	inner := t
	if !t.IsZero() && !t.After(time.Now()) && (c.pending != nil || c.flushing) {
		inner = time.Now().Add(closeFlush)
	}
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(inner)
}
