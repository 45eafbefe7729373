package h2

// reserve waits until s may send and returns how many of want bytes it may
// send in one frame now, taken from both send windows.
func (c *ClientConn) reserve(s *ClientStream, want int) (int, error) {
	for {
		c.mu.Lock()
		if c.err != nil {
			c.mu.Unlock()
			return 0, c.err
		}
		if err := s.writeErr(); err != nil {
			c.mu.Unlock()
			return 0, err
		}
		n := int64(min(want, c.peerFrame))
		n = min(n, s.outflow, c.outflow)
		if n > 0 {
			s.outflow -= n
			c.outflow -= n
			c.mu.Unlock()
			return int(n), nil
		}
		c.blocked[s] = struct{}{}
		c.mu.Unlock()
		select {
		case <-s.wwake:
		case <-s.wdl.Wait():
			c.mu.Lock()
			delete(c.blocked, s)
			c.mu.Unlock()
			return 0, errTimeout
		case <-c.done:
		}
	}
}

// wakeBlocked wakes the writers waiting for window; c.mu is held.
func (c *ClientConn) wakeBlocked() {
	for s := range c.blocked {
		s.wakeWriter()
	}
	clear(c.blocked)
}

// consumed gives n bytes that s's reader took (or that were dropped) back
// to the server's send windows, in updates of at least a quarter window.
// s is nil for bytes of a stream that is gone.
func (c *ClientConn) consumed(s *ClientStream, n int) {
	if n == 0 {
		return
	}
	var connInc, streamInc uint32
	var id uint32
	c.mu.Lock()
	c.unacked += int64(n)
	if c.unacked >= int64(c.connWindow)/4 {
		connInc = uint32(c.unacked)
		c.inflow += c.unacked
		c.unacked = 0
	}
	if s != nil && c.streams[s.id] == s && !s.recvEnd {
		s.unacked += int64(n)
		if s.unacked >= int64(c.streamWindow)/4 {
			streamInc, id = uint32(s.unacked), s.id
			s.inflow += s.unacked
			s.unacked = 0
		}
	}
	c.mu.Unlock()
	if connInc == 0 && streamInc == 0 {
		return
	}
	c.write(func() error {
		if connInc > 0 {
			if err := c.fr.WriteWindowUpdate(0, connInc); err != nil {
				return err
			}
		}
		if streamInc > 0 {
			return c.fr.WriteWindowUpdate(id, streamInc)
		}
		return nil
	})
}

// pad is the padding of s's next frame of k reserved bytes, taken from
// the windows with what they have to spare; a frame too full for it is
// not padded (the first frames of a tunnel are small).
func (c *ClientConn) pad(s *ClientStream, k int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	spare := min(s.outflow, c.outflow) - 1 // the pad length byte counts too
	if !s.pad.on || k > c.peerFrame-1-255 {
		return noPad
	}
	pad := s.pad.next(c.rng, k, int(min(spare, 255)))
	if pad >= 0 {
		s.outflow -= int64(1 + pad)
		c.outflow -= int64(1 + pad)
	}
	return pad
}
