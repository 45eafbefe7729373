package h2

import (
	"context"
	"errors"

	"golang.org/x/net/http2"
)

// onSettings applies the server's SETTINGS and acknowledges them; or
// notes its acknowledgement of ours. A value RFC 9113 §6.5.2 does not
// allow ends the connection.
func (c *ClientConn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		if !isClosed(c.acked) { // only the read loop closes it
			close(c.acked)
		}
		return nil
	}
	var tableSize uint32
	var hasTableSize bool
	c.mu.Lock()
	err := f.ForeachSetting(func(st http2.Setting) error {
		if err := st.Valid(); err != nil {
			code := http2.ErrCodeProtocol
			if ce, ok := errors.AsType[http2.ConnectionError](err); ok {
				code = http2.ErrCode(ce)
			}
			return connErr(code, "an illegal setting: %v", st)
		}
		switch st.ID {
		case http2.SettingEnablePush:
			if st.Val != 0 {
				return connErr(http2.ErrCodeProtocol, "SETTINGS_ENABLE_PUSH = 1 from a server")
			}
		case http2.SettingInitialWindowSize:
			delta := int64(st.Val) - int64(c.peerWindow)
			c.peerWindow = int32(st.Val)
			for _, s := range c.streams {
				s.outflow += delta
				if s.outflow > maxWindow {
					return connErr(http2.ErrCodeFlowControl, "SETTINGS_INITIAL_WINDOW_SIZE = %d takes a stream's window past 2^31-1", st.Val)
				}
			}
			c.wakeBlocked()
		case http2.SettingMaxFrameSize:
			c.peerFrame = int(st.Val)
		case http2.SettingMaxConcurrentStreams:
			c.peerMaxStreams.Store(st.Val)
		case http2.SettingMaxHeaderListSize:
			c.peerMaxHeaderList = st.Val
		case http2.SettingHeaderTableSize:
			tableSize, hasTableSize = st.Val, true
		case http2.SettingEnableConnectProtocol:
			if c.peerConnect && st.Val == 0 {
				return connErr(http2.ErrCodeProtocol, "SETTINGS_ENABLE_CONNECT_PROTOCOL back to 0 (RFC 8441 §3)")
			}
			c.peerConnect = st.Val == 1
		}
		return nil
	})
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if !isClosed(c.settled) { // only the read loop closes it
		close(c.settled)
	}
	c.write(func() error {
		if hasTableSize {
			c.henc.SetMaxDynamicTableSizeLimit(tableSize)
		}
		return c.fr.WriteSettingsAck()
	})
	return nil
}

func (c *ClientConn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	inc := int64(f.Increment)
	c.mu.Lock()
	if f.StreamID == 0 {
		c.outflow += inc
		overflow := c.outflow > maxWindow
		c.wakeBlocked()
		c.mu.Unlock()
		if overflow {
			return connErr(http2.ErrCodeFlowControl, "a WINDOW_UPDATE takes the connection's window past 2^31-1")
		}
		return nil
	}
	s, state := c.streamState(f.StreamID)
	if s == nil {
		c.mu.Unlock()
		if state == streamIdle {
			return connErr(http2.ErrCodeProtocol, "WINDOW_UPDATE on stream %d, which was never opened", f.StreamID)
		}
		return nil // a closed stream's: allowed (RFC 9113 §5.1)
	}
	s.outflow += inc
	overflow := s.outflow > maxWindow
	if _, ok := c.blocked[s]; ok {
		delete(c.blocked, s)
		s.wakeWriter()
	}
	c.mu.Unlock()
	if overflow {
		c.resetFor(s, http2.ErrCodeFlowControl, "a WINDOW_UPDATE takes the stream's window past 2^31-1")
	}
	return nil
}

// onGoAway stops new streams and fails those the server says it left
// alone; the others run to their end.
func (c *ClientConn) onGoAway(f *http2.GoAwayFrame) {
	c.mu.Lock()
	c.goAway = true
	if f.ErrCode != http2.ErrCodeNo && c.goAwayErr == nil {
		debug := f.DebugData()
		c.goAwayErr = &ConnError{Code: f.ErrCode, Remote: true, Reason: string(debug[:min(len(debug), 256)])}
	}
	var refused []*ClientStream
	for id, s := range c.streams {
		if id > f.LastStreamID {
			refused = append(refused, s)
			c.forget(s)
		}
	}
	c.mu.Unlock()
	for _, s := range refused {
		s.fail(errGoAway, errGoAway)
	}
}

// ExtendedConnect waits for the server's first SETTINGS and reports
// whether it takes extended CONNECT (RFC 8441: a :protocol pseudo-field,
// as CONNECT-UDP sends). It fails if ctx ends or the connection does
// first.
func (c *ClientConn) ExtendedConnect(ctx context.Context) (bool, error) {
	select {
	case <-c.settled:
	case <-c.done:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !isClosed(c.settled) {
		return false, c.err
	}
	return c.peerConnect, nil
}
