package tunnel

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// h2ClientStream is one stream of an h2Conn: a CONNECT tunnel or an ordinary
// request. It is the clientStream of HTTP/2 sessions.
type h2ClientStream struct {
	c  *h2Conn
	id uint32

	// Under c.mu: flow control and how the stream stands.
	outflow int64 // send window
	inflow  int64 // receive window left to the server
	unacked int64 // consumed, not yet given back
	sentEnd bool  // END_STREAM or RST_STREAM sent
	recvEnd bool  // END_STREAM received
	werr    error // why writes fail

	respOnce sync.Once
	respCh   chan struct{} // closed when the response (or respErr) is in
	status   int
	header   http.Header
	respErr  error

	// The receive side, under mu. A Read with nothing queued offers its
	// buffer (rbuf) and the read loop fills it directly (taken, then rn).
	mu     sync.Mutex
	q      []h2Chunk
	rbuf   []byte
	taken  bool // the read loop is filling rbuf
	rn     int  // bytes it put there
	tail   bool // the read loop is filling the last chunk of q
	lent   bool // CopyChunks is writing from q[0]
	rerr   error
	closed bool

	rwake     chan struct{}
	wwake     chan struct{}
	rdl, wdl  deadline
	closeOnce sync.Once
}

// h2Chunk is received data waiting for a Read: (*b)[off:end].
type h2Chunk struct {
	b        *[]byte
	off, end int
}

func newH2ClientStream(c *h2Conn) *h2ClientStream {
	return &h2ClientStream{
		c:      c,
		respCh: make(chan struct{}),
		rwake:  make(chan struct{}, 1),
		wwake:  make(chan struct{}, 1),
	}
}

func (s *h2ClientStream) wakeReader() {
	select {
	case s.rwake <- struct{}{}:
	default:
	}
}

func (s *h2ClientStream) wakeWriter() {
	select {
	case s.wwake <- struct{}{}:
	default:
	}
}

// respond records the response (or why there is none), once.
func (s *h2ClientStream) respond(status int, h http.Header, err error) {
	s.respOnce.Do(func() {
		s.status, s.header, s.respErr = status, h, err
		close(s.respCh)
	})
}

func (s *h2ClientStream) hasResponse() bool { return isClosed(s.respCh) }

// response waits for the server's answer to a CONNECT: nil for 2xx. Once
// it is in (every Read asks), it takes no lock.
func (s *h2ClientStream) response() error {
	if !s.hasResponse() {
		select {
		case <-s.respCh:
		case <-s.rdl.wait():
			return errTimeout
		}
	}
	if s.respErr != nil {
		return fmt.Errorf("tunnel: CONNECT: %w", s.respErr)
	}
	return refusal(s.status, s.header)
}

// fail ends reading with rerr (after what is queued) and writing with
// werr, where they have not ended yet; either may be nil.
func (s *h2ClientStream) fail(rerr, werr error) {
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

// writeErr is why s can take no more data; c.mu is held.
func (s *h2ClientStream) writeErr() error {
	if s.werr != nil {
		return s.werr
	}
	if s.sentEnd {
		return errors.New("h2: write after CloseWrite")
	}
	return nil
}

// Write sends p in DATA frames as the windows allow. When the server
// refused the CONNECT (and then reset the stream), the error is the
// refusal, as a Read's is.
func (s *h2ClientStream) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k, err := s.c.reserve(s, len(p)-n)
		if err == nil {
			err = s.c.writeData(s.id, p[n:n+k], false)
		}
		if err != nil {
			if s.hasResponse() && s.respErr == nil {
				if rerr := refusal(s.status, s.header); rerr != nil {
					err = rerr
				}
			}
			return n, err
		}
		n += k
	}
	return n, nil
}

// CloseWrite sends END_STREAM: the target reads EOF.
func (s *h2ClientStream) CloseWrite() error {
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
	return s.c.writeData(s.id, nil, true)
}

// Read returns what the server sent: queued data first; with none, it
// offers p to the read loop and waits.
func (s *h2ClientStream) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.mu.Lock()
	for {
		if n := s.dequeue(p); n > 0 {
			s.mu.Unlock()
			s.c.consumed(s, n)
			return n, nil
		}
		if s.rerr != nil {
			err := s.rerr
			s.mu.Unlock()
			return 0, err
		}
		expired := s.rdl.wait()
		select {
		case <-expired:
			s.mu.Unlock()
			return 0, errTimeout
		default:
		}
		s.rbuf = p
		s.mu.Unlock()
		select {
		case <-s.rwake:
		case <-expired:
		}
		s.mu.Lock()
		for s.taken { // the read loop is writing into p: it finishes first
			s.mu.Unlock()
			<-s.rwake
			s.mu.Lock()
		}
		s.rbuf = nil
		if n := s.rn; n > 0 {
			s.rn = 0
			s.mu.Unlock()
			s.c.consumed(s, n)
			return n, nil
		}
	}
}

// dequeue copies queued data into p; s.mu is held.
func (s *h2ClientStream) dequeue(p []byte) int {
	n := 0
	for n < len(p) && len(s.q) > 0 {
		ch := &s.q[0]
		k := copy(p[n:], (*ch.b)[ch.off:ch.end])
		ch.off += k
		n += k
		if ch.off < ch.end {
			break
		}
		if len(s.q) == 1 && s.tail {
			break // the read loop is adding to it
		}
		s.c.putChunk(ch.b)
		s.q = slices.Delete(s.q, 0, 1)
	}
	return n
}

// CopyChunks passes what the server sends to dst straight from the chunks
// the read loop decrypted it into: one copy fewer than Read into a buffer
// of the caller's and a write from there. It returns at the end of the
// stream (nil) or on an error.
func (s *h2ClientStream) CopyChunks(dst func([]byte) error) (int64, error) {
	var total int64
	s.mu.Lock()
	for {
		if len(s.q) > 0 && s.q[0].off < s.q[0].end {
			ch := &s.q[0]
			p := (*ch.b)[ch.off:ch.end]
			ch.off = ch.end // taken: a Close meanwhile counts only what is left
			s.lent = true
			s.mu.Unlock()
			err := dst(p)
			s.mu.Lock()
			s.lent = false
			// Close took the queue away, and left this chunk to the GC.
			// The read loop may have added to this chunk meanwhile: it
			// goes only once all of it is sent.
			if !s.closed && s.q[0].off == s.q[0].end && !(len(s.q) == 1 && s.tail) {
				s.c.putChunk(s.q[0].b)
				s.q = slices.Delete(s.q, 0, 1)
			}
			s.mu.Unlock()
			s.c.consumed(s, len(p))
			if err != nil {
				return total, err
			}
			total += int64(len(p))
			s.mu.Lock()
			continue
		}
		if s.rerr != nil {
			err := s.rerr
			s.mu.Unlock()
			if err == io.EOF {
				err = nil
			}
			return total, err
		}
		expired := s.rdl.wait()
		s.mu.Unlock()
		select {
		case <-s.rwake:
		case <-expired:
			return total, errTimeout
		}
		s.mu.Lock()
	}
}

// receive reads n bytes of a DATA frame from r (the connection) into the
// buffer of a waiting Read, or into the queue. It returns how many it kept;
// a closed stream keeps none.
func (s *h2ClientStream) receive(r io.Reader, n int) (int, error) {
	kept := 0
	for n > 0 {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_, err := io.CopyN(io.Discard, r, int64(n))
			return kept, err
		}
		var dst []byte
		direct := s.rbuf != nil && len(s.q) == 0
		if direct {
			dst = s.rbuf[:min(n, len(s.rbuf))]
			s.rbuf = nil
			s.taken = true
		} else {
			// Into the last chunk if the rest of the frame fits there, so
			// that a frame is not split into a sliver and the rest.
			if len(s.q) == 0 || len(*s.q[len(s.q)-1].b)-s.q[len(s.q)-1].end < min(n, h2LargeChunk) {
				s.q = append(s.q, h2Chunk{b: s.c.getChunk(n)})
			}
			ch := &s.q[len(s.q)-1]
			dst = (*ch.b)[ch.end:min(ch.end+n, len(*ch.b))]
			s.tail = true
		}
		s.mu.Unlock()
		_, err := io.ReadFull(r, dst)
		s.mu.Lock()
		keep := err == nil && !s.closed // a Close meanwhile dropped the stream's data
		if direct {
			s.taken = false
			if keep {
				s.rn = len(dst)
			}
		} else {
			s.tail = false
			if keep {
				s.q[len(s.q)-1].end += len(dst)
			}
		}
		s.mu.Unlock()
		s.wakeReader()
		if err != nil {
			return kept, err
		}
		if keep {
			kept += len(dst)
		}
		n -= len(dst)
	}
	return kept, nil
}

// Close ends the stream, resetting it unless both sides had ended, and
// gives what it had queued back to the connection's window.
func (s *h2ClientStream) Close() error {
	s.closeWith(net.ErrClosed)
	return nil
}

func (s *h2ClientStream) closeWith(err error) {
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
		s.rdl.set(time.Time{})
		s.wdl.set(time.Time{})
		s.c.consumed(nil, dropped)
	})
}

func (s *h2ClientStream) SetReadDeadline(t time.Time) error {
	s.rdl.set(t)
	return nil
}

func (s *h2ClientStream) SetWriteDeadline(t time.Time) error {
	s.wdl.set(t)
	return nil
}

// getChunk returns a buffer for at least min(n, 256 KiB) bytes of a DATA
// frame: a small one for small frames, so that an unread trickle holds
// little memory.
func (c *h2Conn) getChunk(n int) *[]byte {
	pool, size := &c.smallChunks, h2SmallChunk
	if n > h2SmallChunk {
		pool, size = &c.largeChunks, h2LargeChunk
	}
	if b, ok := pool.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, size)
	return &b
}

func (c *h2Conn) putChunk(b *[]byte) {
	if len(*b) == h2LargeChunk {
		c.largeChunks.Put(b)
	} else {
		c.smallChunks.Put(b)
	}
}

const (
	h2SmallChunk = 16 << 10
	h2LargeChunk = 256 << 10
)
