package h2

import (
	"errors"
	"fmt"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// NewStream opens a stream: it sends fields (pseudo-fields first, names in
// lower case) as the stream's HEADERS, with END_STREAM when end is set, and
// returns the stream without waiting for the response. An error that came
// before the HEADERS went out wraps ErrNotProcessed: the stream can go on
// another connection.
func (c *ClientConn) NewStream(fields []hpack.HeaderField, end bool) (*ClientStream, error) {
	s := newClientStream(c, fields)
	if err := c.openStream(s, fields, end); err != nil {
		return nil, err
	}
	return s, nil
}

// openStream registers s under the next stream ID and sends its HEADERS,
// all under the write lock, since the server wants stream IDs in
// increasing order.
func (c *ClientConn) openStream(s *ClientStream, fields []hpack.HeaderField, end bool) error {
	var size uint64
	for _, f := range fields {
		size += uint64(f.Size())
	}
	registered := false
	err := c.write(func() error {
		c.mu.Lock()
		if err := c.openErr(); err != nil {
			c.mu.Unlock()
			return errNoWrite{fmt.Errorf("%w: %w", ErrNotProcessed, err)}
		}
		if size > uint64(c.peerMaxHeaderList) {
			c.mu.Unlock()
			return errNoWrite{fmt.Errorf("h2: %d bytes of header fields; the server takes %d", size, c.peerMaxHeaderList)}
		}
		registered = true
		s.id = c.nextID
		c.nextID += 2
		s.outflow = int64(c.peerWindow)
		s.inflow = int64(c.streamWindow)
		s.sentEnd = end
		c.streams[s.id] = s
		maxFrame := c.peerFrame
		c.mu.Unlock()

		c.hbuf.Reset()
		for _, f := range fields {
			if err := c.henc.WriteField(f); err != nil {
				return err
			}
		}
		block := c.hbuf.Bytes()
		first := block[:min(len(block), maxFrame)]
		block = block[len(first):]
		err := c.fr.WriteHeaders(http2.HeadersFrameParam{
			StreamID: s.id, BlockFragment: first, EndStream: end, EndHeaders: len(block) == 0,
		})
		for err == nil && len(block) > 0 {
			frag := block[:min(len(block), maxFrame)]
			block = block[len(frag):]
			err = c.fr.WriteContinuation(s.id, len(block) == 0, frag)
		}
		return err
	})
	if err != nil && !registered {
		var nw errNoWrite
		if errors.As(err, &nw) {
			err = nw.error
		}
		return err
	}
	return err
}

// maxStreamID is the last stream ID a client may use (RFC 9113 §5.1.1).
const maxStreamID = 1<<31 - 1

// openErr is why no stream may be opened on c now, or nil; c.mu is held.
func (c *ClientConn) openErr() error {
	switch {
	case c.err != nil:
		return c.err
	case c.goAway:
		return errGoingAway
	case c.nextID > maxStreamID: // reserved while alive, after the last ID went
		return errIDsUsedUp
	}
	return nil
}

// forget takes s off the connection and reports whether it was on it;
// c.mu is held.
func (c *ClientConn) forget(s *ClientStream) bool {
	if c.streams[s.id] != s {
		return false
	}
	delete(c.streams, s.id)
	delete(c.blocked, s)
	return true
}

// streamDone forgets s once both of its directions have ended; c.mu is
// held.
func (c *ClientConn) streamDone(s *ClientStream) {
	if s.sentEnd && s.recvEnd {
		c.forget(s)
	}
}

// reset ends s with RST_STREAM code unless it ended already.
func (c *ClientConn) reset(s *ClientStream, code http2.ErrCode) {
	if c.dropReset(s) {
		c.writeReset(s.id, code)
	}
}

// dropReset takes s off c as a stream the client resets, and reports
// whether it was on it.
func (c *ClientConn) dropReset(s *ClientStream) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	live := c.forget(s)
	if live {
		c.resets.add(s.id)
	}
	return live
}

// resetFor resets s for a fault of the server's, which its reads (after
// what it had received in order) and writes then return: from before
// the RST_STREAM leaves, so that nothing that learns of the reset from
// the server can still read a clean end.
func (c *ClientConn) resetFor(s *ClientStream, code http2.ErrCode, reason string) {
	err := &StreamError{StreamID: s.id, Code: code, Reason: reason}
	live := c.dropReset(s)
	s.fail(err, err)
	s.failEOF(err)
	if live {
		c.writeReset(s.id, code)
	}
}

// clientResets remembers the streams the client reset lately. Frames the
// server sent before it saw the RST_STREAM are ignored on those (RFC 9113
// §5.1, "closed"); on another closed stream they are an error.
type clientResets struct {
	ids  map[uint32]struct{}
	ring [128]uint32
	next int
}

func (r *clientResets) add(id uint32) {
	if r.ids == nil {
		r.ids = make(map[uint32]struct{}, len(r.ring))
	}
	delete(r.ids, r.ring[r.next])
	r.ring[r.next] = id
	r.next = (r.next + 1) % len(r.ring)
	r.ids[id] = struct{}{}
}

func (r *clientResets) has(id uint32) bool {
	_, ok := r.ids[id]
	return ok
}
