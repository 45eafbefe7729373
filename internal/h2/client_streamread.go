package h2

import (
	"io"
	"slices"
)

// clientChunk is received data waiting for a Read: (*b)[off:end].
type clientChunk struct {
	b        *[]byte
	off, end int
}

// Read returns what the server sent: queued data first; with none, it
// offers p to the read loop and waits.
func (s *ClientStream) Read(p []byte) (int, error) {
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
		expired := s.rdl.Wait()
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
func (s *ClientStream) dequeue(p []byte) int {
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
func (s *ClientStream) CopyChunks(dst func([]byte) error) (int64, error) {
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
		expired := s.rdl.Wait()
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
func (s *ClientStream) receive(r io.Reader, n int) (int, error) {
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
			if len(s.q) == 0 || len(*s.q[len(s.q)-1].b)-s.q[len(s.q)-1].end < min(n, clientLargeChunk) {
				s.q = append(s.q, clientChunk{b: s.c.getChunk(n)})
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

// getChunk returns a buffer for at least min(n, 256 KiB) bytes of a DATA
// frame: a small one for small frames, so that an unread trickle holds
// little memory.
func (c *ClientConn) getChunk(n int) *[]byte {
	pool, size := &c.smallChunks, clientSmallChunk
	if n > clientSmallChunk {
		pool, size = &c.largeChunks, clientLargeChunk
	}
	if b, ok := pool.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, size)
	return &b
}

func (c *ClientConn) putChunk(b *[]byte) {
	if len(*b) == clientLargeChunk {
		c.largeChunks.Put(b)
	} else {
		c.smallChunks.Put(b)
	}
}

const (
	clientSmallChunk = 16 << 10
	clientLargeChunk = 256 << 10
)
