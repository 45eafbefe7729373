package h2

import (
	"fmt"
	"io"
	"time"

	"golang.org/x/net/http2"
)

// The read loop's handling of each frame, after RFC 9113 and as
// net/http's server does it, error code for error code.

func connError(code http2.ErrCode) error { return http2.ConnectionError(code) }

func streamError(id uint32, code http2.ErrCode) error {
	return http2.StreamError{StreamID: id, Code: code}
}

func (c *serverConn) processFrame(f http2.Frame) error {
	if !c.sawSettings {
		if _, ok := f.(*http2.SettingsFrame); !ok {
			return connError(http2.ErrCodeProtocol) // the preface's SETTINGS comes first
		}
		c.sawSettings = true
		c.conn.SetReadDeadline(time.Time{})
	}
	c.mu.Lock()
	// After GOAWAY: drop frames of streams it did not admit, and all of
	// them after a GOAWAY for an error, giving back their flow control.
	drop := c.inGoAway && (c.goAwayCode != http2.ErrCodeNo || f.Header().StreamID > c.maxClientID)
	if drop {
		var err error
		if d, ok := f.(*http2.DataFrame); ok {
			err = c.refundDroppedLocked(d)
		}
		c.unlock()
		return err
	}
	c.mu.Unlock()
	switch f := f.(type) {
	case *http2.SettingsFrame:
		return c.processSettings(f)
	case *headerBlock:
		return c.processHeaders(f)
	case *http2.WindowUpdateFrame:
		return c.processWindowUpdate(f)
	case *http2.PingFrame:
		return c.processPing(f)
	case *http2.DataFrame:
		return c.processData(f)
	case *http2.RSTStreamFrame:
		return c.processReset(f)
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			return streamError(f.StreamID, http2.ErrCodeProtocol) // §5.3.1
		}
		return nil
	case *http2.GoAwayFrame:
		c.goAway(http2.ErrCodeNo) // the client is done: finish what is open
		return nil
	case *http2.PushPromiseFrame:
		return connError(http2.ErrCodeProtocol) // a client cannot push
	}
	return nil // unknown frame types are ignored (§5.5)
}

// refundDroppedLocked takes a dropped DATA frame from the connection
// window and gives it straight back; c.mu is held.
func (c *serverConn) refundDroppedLocked(f *http2.DataFrame) error {
	if !c.inflow.take(f.Length) {
		return streamError(f.StreamID, http2.ErrCodeFlowControl)
	}
	c.windowUpdateLocked(nil, int(f.Length))
	return nil
}

func (c *serverConn) processSettings(f *http2.SettingsFrame) error {
	c.mu.Lock()
	if f.IsAck() {
		c.unacked--
		bad := c.unacked < 0
		c.mu.Unlock()
		if bad {
			return connError(http2.ErrCodeProtocol) // an ack of SETTINGS never sent
		}
		return nil
	}
	if f.NumSettings() > 100 || f.HasDuplicates() {
		c.mu.Unlock()
		return connError(http2.ErrCodeProtocol)
	}
	err := f.ForeachSetting(c.applySettingLocked)
	if err == nil {
		c.sendLocked(control{kind: http2.FrameSettings, ack: true})
	}
	c.unlock()
	return err
}

// applySettingLocked applies one of the client's settings; c.mu is held.
func (c *serverConn) applySettingLocked(s http2.Setting) error {
	if err := s.Valid(); err != nil {
		return err
	}
	switch s.ID {
	case http2.SettingHeaderTableSize:
		c.w.tableSize.Store(int64(s.Val)) // the encoder takes it at its next block
	case http2.SettingInitialWindowSize:
		growth := int64(s.Val) - int64(c.peerWindow)
		c.peerWindow = int32(s.Val)
		for _, st := range c.streams {
			if !addWindow(&st.outflow, growth) {
				return connError(http2.ErrCodeFlowControl) // §6.9.2
			}
		}
		c.wakeBlockedLocked()
	case http2.SettingMaxFrameSize:
		c.peerFrame = int(s.Val)
	}
	return nil // ENABLE_PUSH, MAX_CONCURRENT_STREAMS (we never push) and unknown ones
}

func (c *serverConn) processPing(f *http2.PingFrame) error {
	if f.IsAck() {
		c.mu.Lock()
		if c.pingSent && f.Data == c.pingData {
			c.pingSent = false
		}
		c.mu.Unlock()
		return nil
	}
	if f.StreamID != 0 {
		return connError(http2.ErrCodeProtocol)
	}
	return c.w.control(control{kind: http2.FramePing, ack: true, data: f.Data})
}

func (c *serverConn) processWindowUpdate(f *http2.WindowUpdateFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.StreamID == 0 {
		if !addWindow(&c.outflow, int64(f.Increment)) {
			return connError(http2.ErrCodeFlowControl)
		}
		c.wakeBlockedLocked()
		return nil
	}
	st := c.streams[f.StreamID]
	if st == nil {
		if f.StreamID > c.maxClientID {
			return connError(http2.ErrCodeProtocol) // an idle stream
		}
		return nil // a closed one: allowed (§6.9)
	}
	if !addWindow(&st.outflow, int64(f.Increment)) {
		return streamError(f.StreamID, http2.ErrCodeFlowControl)
	}
	if _, ok := c.blocked[st]; ok {
		delete(c.blocked, st)
		wake(st.wwake)
	}
	return nil
}

func (c *serverConn) processReset(f *http2.RSTStreamFrame) error {
	c.mu.Lock()
	st := c.streams[f.StreamID]
	if st == nil {
		idle := f.StreamID > c.maxClientID
		c.mu.Unlock()
		if idle {
			return connError(http2.ErrCodeProtocol) // §6.4
		}
		return nil
	}
	c.endStreamLocked(st, fmt.Errorf("h2: stream reset by the client: %v", f.ErrCode))
	c.unlock()
	return nil
}

func (c *serverConn) processData(f *http2.DataFrame) error {
	id := f.StreamID
	data := f.Data()
	c.mu.Lock()
	defer c.unlock()
	st := c.streams[id]
	if st == nil && (id == 0 || id > c.maxClientID) {
		return connError(http2.ErrCodeProtocol) // §6.1, §5.1: no such stream yet
	}
	if st == nil || st.recvEnd || st.reset {
		if err := c.refundDroppedLocked(f); err != nil || (st != nil && st.reset) {
			return err
		}
		return streamError(id, http2.ErrCodeStreamClosed) // §5.1
	}
	if st.declBytes >= 0 && st.bodyBytes+int64(len(data)) > st.declBytes {
		if err := c.refundDroppedLocked(f); err != nil {
			return err
		}
		st.bodyErr = fmt.Errorf("h2: the client sent more than its Content-Length of %d bytes", st.declBytes)
		wake(st.rwake)
		return streamError(id, http2.ErrCodeProtocol) // §8.1.1
	}
	if f.Length > 0 {
		if !takeInflows(&c.inflow, &st.inflow, f.Length) {
			return streamError(id, http2.ErrCodeFlowControl)
		}
		if len(data) > 0 {
			st.bodyBytes += int64(len(data))
			if st.bodyClosed {
				c.windowUpdateLocked(nil, len(data)) // dropped: only the connection's back
			} else {
				st.body.write(data)
				wake(st.rwake)
			}
		}
		// Padding is given back at once (even none: that sends what is
		// owed once the window runs low, as net/http does).
		pad := int(f.Length) - len(data)
		c.windowUpdateLocked(nil, pad)
		c.windowUpdateLocked(st, pad)
	}
	if f.StreamEnded() {
		c.bodyEndedLocked(st)
	}
	return nil
}

// bodyEndedLocked marks the request body complete; c.mu is held.
func (c *serverConn) bodyEndedLocked(st *serverStream) {
	if st.bodyErr == nil {
		if st.declBytes >= 0 && st.declBytes != st.bodyBytes {
			st.bodyErr = fmt.Errorf("h2: the client declared a Content-Length of %d but sent %d bytes", st.declBytes, st.bodyBytes)
		} else {
			st.bodyErr = io.EOF
		}
	}
	st.recvEnd = true
	wake(st.rwake)
	c.maybeCloseLocked(st)
}
