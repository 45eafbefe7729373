package h2

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/porta443/porta/internal/deadline"
)

// ClientStream is one stream of a ClientConn: a CONNECT tunnel, or an
// ordinary request. Read and Write may run at once, each on one goroutine.
type ClientStream struct {
	c  *ClientConn
	id uint32

	// Under c.mu: flow control and how the stream stands.
	outflow  int64   // send window
	pad      padding // what is left of its first frames to pad (PadFirst)
	inflow   int64   // receive window left to the server
	unacked  int64   // consumed, not yet given back
	sentEnd  bool    // END_STREAM or RST_STREAM sent
	recvEnd  bool    // END_STREAM received
	final    bool    // the final (non-1xx) response is in
	num1xx   int     // interim responses so far
	checkLen bool    // the body is held to the response's Content-Length
	wantLen  int64   // that Content-Length; -1: none, or not checked
	gotLen   int64   // DATA payload received
	werr     error   // why writes fail

	respOnce sync.Once
	respCh   chan struct{} // closed when the response (or respErr) is in
	status   int
	header   http.Header
	respErr  error

	// The receive side, under mu. A Read with nothing queued offers its
	// buffer (rbuf) and the read loop fills it directly (taken, then rn).
	mu     sync.Mutex
	q      []clientChunk
	rbuf   []byte
	taken  bool // the read loop is filling rbuf
	rn     int  // bytes it put there
	tail   bool // the read loop is filling the last chunk of q
	lent   bool // CopyChunks is writing from q[0]
	rerr   error
	closed bool

	rwake     chan struct{}
	wwake     chan struct{}
	rdl, wdl  deadline.Deadline
	closeOnce sync.Once
}

func newClientStream(c *ClientConn, fields []hpack.HeaderField) *ClientStream {
	s := &ClientStream{
		c:        c,
		checkLen: true,
		wantLen:  -1,
		respCh:   make(chan struct{}),
		rwake:    make(chan struct{}, 1),
		wwake:    make(chan struct{}, 1),
	}
	for _, f := range fields {
		if f.Name == ":method" {
			// A HEAD response's Content-Length is the GET's; a CONNECT's
			// 2xx has none worth checking (RFC 9110 §9.3.6).
			s.checkLen = f.Value != http.MethodHead && f.Value != http.MethodConnect
		}
	}
	return s
}

// ID is the stream's identifier on its connection.
func (s *ClientStream) ID() uint32 { return s.id }

func (s *ClientStream) wakeReader() {
	select {
	case s.rwake <- struct{}{}:
	default:
	}
}

func (s *ClientStream) wakeWriter() {
	select {
	case s.wwake <- struct{}{}:
	default:
	}
}

// respond records the response (or why there is none), once.
func (s *ClientStream) respond(status int, h http.Header, err error) {
	s.respOnce.Do(func() {
		s.status, s.header, s.respErr = status, h, err
		close(s.respCh)
	})
}

// AwaitResponse waits for the server's final response and returns its
// status and header fields; or why there is none: the stream or
// connection failed, the read deadline passed, or ctx ended. Once the
// response is in, it takes no lock.
func (s *ClientStream) AwaitResponse(ctx context.Context) (status int, header http.Header, err error) {
	if !isClosed(s.respCh) {
		select {
		case <-s.respCh:
		case <-s.rdl.Wait():
			return 0, nil, errTimeout
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		}
	}
	return s.status, s.header, s.respErr
}

// Response is the final response if it is in: ok is false while it is
// not, and when the stream failed without one.
func (s *ClientStream) Response() (status int, header http.Header, ok bool) {
	if !isClosed(s.respCh) || s.respErr != nil {
		return 0, nil, false
	}
	return s.status, s.header, true
}

// fail ends reading with rerr (after what is queued) and writing with
// werr, where they have not ended yet; either may be nil.
func (s *ClientStream) fail(rerr, werr error) {
	if werr != nil {
		s.c.mu.Lock()
		if s.werr == nil {
			s.werr = werr
		}
		s.c.mu.Unlock()
		s.wakeWriter()
	}
	if rerr != nil {
		s.mu.Lock()
		if s.rerr == nil {
			s.rerr = rerr
		}
		s.mu.Unlock()
		s.wakeReader()
		s.respond(0, nil, rerr)
	}
}

// failEOF makes err what a Read returns at the end instead of the EOF of
// an END_STREAM, when the server broke the protocol after it.
func (s *ClientStream) failEOF(err error) {
	s.mu.Lock()
	if s.rerr == io.EOF && !s.closed {
		s.rerr = err
	}
	s.mu.Unlock()
	s.wakeReader()
}

// writeErr is why s can take no more data; c.mu is held.
func (s *ClientStream) writeErr() error {
	if s.werr != nil {
		return s.werr
	}
	if s.sentEnd {
		return errors.New("h2: write after CloseWrite")
	}
	return nil
}

// Write sends p in DATA frames as the windows allow. It goes on after the
// server ended its side of the stream, until the server resets it.
func (s *ClientStream) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k, err := s.c.reserve(s, len(p)-n)
		if err == nil {
			pad := noPad
			if n == 0 {
				pad = s.c.pad(s, k) // only a write's first frame is padded
			}
			err = s.c.writeData(s.id, p[n:n+k], pad, false)
		}
		if err != nil {
			return n, err
		}
		n += k
	}
	return n, nil
}

// PadFirst pads the stream's first DATA frames, as a tunnel's are (see
// padding). Call it before the first Write.
func (s *ClientStream) PadFirst() {
	s.c.mu.Lock()
	s.pad = newPadding()
	s.c.mu.Unlock()
}

// CloseWrite sends END_STREAM: the server reads the end of the request.
func (s *ClientStream) CloseWrite() error {
	s.c.mu.Lock()
	if err := s.writeErr(); err != nil {
		s.c.mu.Unlock()
		if s.sentEnd {
			return nil
		}
		return err
	}
	s.sentEnd = true
	s.c.streamDone(s)
	s.c.mu.Unlock()
	return s.c.writeData(s.id, nil, noPad, true)
}

// Close ends the stream, resetting it (CANCEL) unless both sides had
// ended, and gives what it had queued back to the connection's window.
func (s *ClientStream) Close() error {
	s.closeWith(net.ErrClosed)
	return nil
}

func (s *ClientStream) closeWith(err error) {
	s.closeOnce.Do(func() {
		s.c.reset(s, http2.ErrCodeCancel)
		s.mu.Lock()
		s.closed = true
		s.rerr = err
		dropped := 0
		for i, ch := range s.q {
			dropped += ch.end - ch.off
			inUse := (i == len(s.q)-1 && s.tail) || (i == 0 && s.lent)
			if !inUse {
				s.c.putChunk(ch.b)
			}
		}
		s.q = nil
		s.mu.Unlock()
		s.wakeReader()
		s.fail(nil, err)
		s.respond(0, nil, err)
		s.rdl.Set(time.Time{})
		s.wdl.Set(time.Time{})
		s.c.consumed(nil, dropped)
	})
}

// SetReadDeadline bounds Read, CopyChunks and AwaitResponse, as
// net.Conn's does; a deadline set while they wait ends them.
func (s *ClientStream) SetReadDeadline(t time.Time) error {
	s.rdl.Set(t)
	return nil
}

// SetWriteDeadline bounds Write's wait for window.
func (s *ClientStream) SetWriteDeadline(t time.Time) error {
	s.wdl.Set(t)
	return nil
}
