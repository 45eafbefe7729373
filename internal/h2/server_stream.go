package h2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// serverStream is one request on a server connection: its flow-control
// windows, the request body as it arrives, and whether each direction has
// ended. Its fields below the line are guarded by the connection's mu.
//
// The protocol's view (recvEnd, sentEnd, reset: the stream is closed
// once both directions ended or it was reset, and then no longer counts
// against the stream limit) is apart from the handler's, which may still
// be reading what arrived and returns when it likes.
type serverStream struct {
	c      *serverConn
	id     uint32
	ctx    context.Context
	cancel context.CancelFunc

	// Guarded by c.mu:
	recvEnd     bool // END_STREAM received (or the body given up)
	sentEnd     bool // END_STREAM sent
	reset       bool // RST_STREAM sent or received
	closed      bool // off the connection
	gotTrailers bool
	handlerDone bool
	inflow      inflow
	window      int32   // the receive window we give the stream: the setting, or more (Tune)
	pad         padding // what is left of its first frames to pad (Tune)
	outflow     int64
	hasBody     bool // the request has a body (no END_STREAM on its HEADERS)
	body        recvBuffer
	bodyErr     error // what Read returns once body is empty: io.EOF or why it ended
	bodyClosed  bool  // the handler closed the body: DATA is dropped
	bodyBytes   int64
	declBytes   int64       // Content-Length, or -1
	trailer     http.Header // trailers received, for reqTrailer's declared keys
	reqTrailer  http.Header // Request.Trailer
	werr        error       // why writes fail
	rdl, wdl    *time.Timer
	rwake       chan struct{} // a Read waits here for data; made when one first waits
	wwake       chan struct{} // a Write waits here for window; likewise

	// The request and its handler, and what it is given to answer with:
	// parts of the stream rather than allocations of their own.
	req     *http.Request
	handler http.Handler
	reqBody requestBody
	rw      responseWriter
}

// readWaiter is the channel a Read waits on; c.mu is held.
func (st *serverStream) readWaiter() chan struct{} {
	if st.rwake == nil {
		st.rwake = make(chan struct{}, 1)
	}
	return st.rwake
}

// writeWaiter is the channel a Write waits on for window; c.mu is held.
func (st *serverStream) writeWaiter() chan struct{} {
	if st.wwake == nil {
		st.wwake = make(chan struct{}, 1)
	}
	return st.wwake
}

var (
	errStreamClosed    = errors.New("h2: stream closed")
	errClientGone      = errors.New("h2: client disconnected")
	errBodyClosed      = errors.New("h2: request body closed by handler")
	errHandlerDone     = errors.New("h2: request body closed: the handler returned")
	errWroteTooMuch    = errors.New("h2: handler wrote more than the declared Content-Length")
	errWriteAfterClose = errors.New("h2: write after CloseWrite")
)

// wake wakes what waits on ch, if anything does (a nil ch: nothing).
func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// recvBuffer holds request body data that arrived and was not read yet,
// in chunks from a pool.
type recvBuffer struct {
	pool   *sync.Pool // of *[]byte with room for recvChunk
	chunks []*[]byte
	off    int // read offset in chunks[0]
	n      int // bytes held
}

const recvChunk = 16 << 10

func (b *recvBuffer) write(p []byte) {
	b.n += len(p)
	for len(p) > 0 {
		if len(b.chunks) > 0 {
			last := b.chunks[len(b.chunks)-1]
			if free := cap(*last) - len(*last); free > 0 {
				k := min(free, len(p))
				*last = append(*last, p[:k]...)
				p = p[k:]
				continue
			}
		}
		c, _ := b.pool.Get().(*[]byte)
		if c == nil {
			buf := make([]byte, 0, recvChunk)
			c = &buf
		}
		*c = (*c)[:0]
		b.chunks = append(b.chunks, c)
	}
}

func (b *recvBuffer) read(p []byte) int {
	n := 0
	for n < len(p) && len(b.chunks) > 0 {
		c := b.chunks[0]
		k := copy(p[n:], (*c)[b.off:])
		n += k
		b.off += k
		if b.off == len(*c) {
			b.drop()
		}
	}
	b.n -= n
	return n
}

// drop gives the first chunk back to the pool.
func (b *recvBuffer) drop() {
	b.pool.Put(b.chunks[0])
	b.chunks[0] = nil
	b.chunks = b.chunks[1:]
	b.off = 0
	if len(b.chunks) == 0 {
		b.chunks = nil
	}
}

// discard empties the buffer and reports how many bytes it held.
func (b *recvBuffer) discard() int {
	n := b.n
	for len(b.chunks) > 0 {
		b.drop()
	}
	b.n = 0
	return n
}

// newStreamLocked opens stream id; c.mu is held.
func (c *serverConn) newStreamLocked(id uint32, ended bool) *serverStream {
	ctx, cancel := context.WithCancel(c.baseCtx)
	st := &serverStream{
		c:         c,
		id:        id,
		ctx:       ctx,
		cancel:    cancel,
		recvEnd:   ended,
		hasBody:   !ended,
		outflow:   int64(c.peerWindow),
		declBytes: -1,
	}
	st.inflow.avail = c.set.streamWindow
	st.window = c.set.streamWindow
	st.body.pool = &c.srv.chunks
	if ended {
		st.bodyErr = io.EOF
	}
	c.streams[id] = st
	if c.idle != nil {
		c.idle.Stop()
	}
	return st
}

// maybeCloseLocked takes st off the connection once both directions
// ended or it was reset; c.mu is held.
func (c *serverConn) maybeCloseLocked(st *serverStream) {
	if st.closed || !(st.reset || st.recvEnd && st.sentEnd) {
		return
	}
	st.closed = true
	if st.werr == nil {
		st.werr = errStreamClosed
	}
	delete(c.streams, st.id)
	delete(c.blocked, st)
	if len(c.streams) == 0 {
		if c.idle != nil && c.err == nil {
			c.idle.Reset(c.set.idleTimeout)
		}
		if c.inGoAway {
			c.closeSoon() // a graceful GOAWAY is done when the last stream is
		}
	}
}

// endStreamLocked ends st abnormally (a reset either way, a deadline, the
// connection's end): what it buffered is dropped, and its reads and writes
// return err; c.mu is held.
func (c *serverConn) endStreamLocked(st *serverStream, err error) {
	if st.reset {
		return
	}
	st.reset = true
	if n := st.body.discard(); n > 0 && c.err == nil {
		c.windowUpdateLocked(nil, n)
	}
	if st.bodyErr == nil || st.bodyErr == io.EOF {
		st.bodyErr = err
	}
	if st.werr == nil || st.werr == errStreamClosed {
		st.werr = err
	}
	st.cancel()
	wake(st.rwake)
	wake(st.wwake)
	c.maybeCloseLocked(st)
}

// resetStream sends RST_STREAM with code for stream id, which may be
// one the connection never opened (a malformed request), and ends it.
func (c *serverConn) resetStream(id uint32, code http2.ErrCode) {
	c.mu.Lock()
	if st := c.streams[id]; st != nil {
		if st.reset {
			c.mu.Unlock()
			return
		}
		c.endStreamLocked(st, fmt.Errorf("h2: stream reset: %v", code))
	}
	if c.err == nil {
		c.sendLocked(control{kind: http2.FrameRSTStream, id: id, val: uint32(code)})
	}
	c.unlock()
}

// abort ends st with RST_STREAM and code unless it is over already; its
// reads and writes return cause.
func (c *serverConn) abort(st *serverStream, code http2.ErrCode, cause error) {
	c.mu.Lock()
	if !st.closed && !st.reset && c.err == nil {
		c.endStreamLocked(st, cause)
		c.sendLocked(control{kind: http2.FrameRSTStream, id: st.id, val: uint32(code)})
	}
	c.unlock()
}

// windowUpdateLocked gives n consumed bytes back to the connection's
// window (st nil) or st's, and queues the WINDOW_UPDATE when one is due;
// c.mu is held.
func (c *serverConn) windowUpdateLocked(st *serverStream, n int) {
	var inc int32
	var id uint32
	if st == nil {
		inc = c.inflow.add(n)
	} else {
		inc, id = st.inflow.add(n), st.id
	}
	if inc > 0 {
		c.sendLocked(control{kind: http2.FrameWindowUpdate, id: id, val: uint32(inc)})
	}
}

func (c *serverConn) wakeBlockedLocked() {
	for st := range c.blocked {
		wake(st.wwake)
	}
	clear(c.blocked)
}

// sendLocked queues f to go out when c.mu is let go by unlock; c.mu is
// held. The frames wait in c's outbox so that nothing waits for the
// writer while holding c.mu.
func (c *serverConn) sendLocked(f control) {
	c.outbox = append(c.outbox, f)
}

// unlock lets go of c.mu and sends what sendLocked queued.
func (c *serverConn) unlock() {
	out := c.outbox
	c.outbox = nil
	c.mu.Unlock()
	for i := range out {
		if err := c.w.control(out[i]); err != nil {
			c.fail(err)
			return
		}
	}
}
