package h2

import (
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/net/http2"
)

// readLoop reads frames until the connection ends, and ends it with the
// reason: for a fault of the server's, after a GOAWAY that says so.
func (c *ClientConn) readLoop() {
	defer c.wg.Done()
	err := c.readFrames()
	if ce, ok := errors.AsType[*ConnError](err); ok {
		c.abort(ce)
		return
	}
	c.mu.Lock()
	gone := c.goAwayErr
	c.mu.Unlock()
	switch {
	case gone != nil: // it said why it went; the close that follows says less
		c.fail(gone)
	case errors.Is(err, io.EOF):
		c.fail(errors.New("h2: server closed the connection"))
	default:
		c.fail(fmt.Errorf("h2: %w", err))
	}
}

func (c *ClientConn) readFrames() error {
	for {
		fh, err := c.fr.ReadFrameHeader()
		if err != nil {
			return c.framerErr(err)
		}
		c.lastFrame.Store(time.Now().UnixNano())
		if !c.gotSettings {
			if fh.Type != http2.FrameSettings || fh.Flags.Has(http2.FlagSettingsAck) {
				return connErr(http2.ErrCodeProtocol, "the server's first frame is %v, not SETTINGS (RFC 9113 §3.4)", fh.Type)
			}
			c.gotSettings = true
		}
		switch fh.Type {
		case http2.FrameData:
			err = c.readData(fh)
		case http2.FrameHeaders:
			err = c.readHeaders(fh)
		default:
			err = c.readFrame(fh)
		}
		if err != nil {
			return err
		}
	}
}

// readFrame reads and handles a frame other than DATA and HEADERS.
func (c *ClientConn) readFrame(fh http2.FrameHeader) error {
	f, err := c.fr.ReadFrameForHeader(fh)
	if se, ok := errors.AsType[http2.StreamError](err); ok {
		// A frame that breaks the protocol on one stream only (a
		// WINDOW_UPDATE of 0, a PRIORITY on itself).
		c.mu.Lock()
		s, state := c.streamState(se.StreamID)
		c.mu.Unlock()
		if state == streamIdle && fh.Type != http2.FramePriority {
			return connErr(http2.ErrCodeProtocol, "%v on stream %d, which was never opened", fh.Type, se.StreamID)
		}
		if s != nil {
			c.resetFor(s, se.Code, fmt.Sprintf("an ill-formed %v frame: %v", fh.Type, se))
		}
		return nil
	}
	if err != nil {
		return c.framerErr(err)
	}
	switch f := f.(type) {
	case *http2.RSTStreamFrame:
		return c.onReset(f)
	case *http2.SettingsFrame:
		return c.onSettings(f)
	case *http2.WindowUpdateFrame:
		return c.onWindowUpdate(f)
	case *http2.PingFrame:
		c.onPing(f)
	case *http2.GoAwayFrame:
		c.onGoAway(f)
	case *http2.PushPromiseFrame:
		return connErr(http2.ErrCodeProtocol, "PUSH_PROMISE, though the client turned push off")
	}
	return nil // PRIORITY and unknown frames are ignored (RFC 9113 §5.5)
}

// framerErr is err from the Framer as a *ConnError where it is the
// server's fault.
func (c *ClientConn) framerErr(err error) error {
	if code, ok := errors.AsType[http2.ConnectionError](err); ok {
		reason := "a frame the Framer refused"
		if d := c.fr.ErrorDetail(); d != nil {
			reason = d.Error()
		}
		return connErr(http2.ErrCode(code), "%s", reason)
	}
	if errors.Is(err, http2.ErrFrameTooLarge) {
		return connErr(http2.ErrCodeFrameSize, "a frame larger than the client's SETTINGS_MAX_FRAME_SIZE")
	}
	return err
}

// clientStreamState is how a stream stands, for a frame that names it.
type clientStreamState int

const (
	streamLive    clientStreamState = iota
	streamIdle                      // never opened: the server cannot open any
	streamResetUs                   // reset by the client lately: frames in flight are dropped
	streamClosed                    // closed some other way
)

// streamState is the stream id names and how it stands; c.mu is held.
func (c *ClientConn) streamState(id uint32) (*ClientStream, clientStreamState) {
	if s := c.streams[id]; s != nil {
		return s, streamLive
	}
	switch {
	case id%2 == 0 || id >= c.nextID:
		return nil, streamIdle
	case c.resets.has(id):
		return nil, streamResetUs
	}
	return nil, streamClosed
}

// onClosedStream answers DATA or HEADERS on a closed stream with a stream
// error (RFC 9113 §5.1), once: it then counts as reset by the client.
func (c *ClientConn) onClosedStream(id uint32) {
	c.mu.Lock()
	c.resets.add(id)
	c.mu.Unlock()
	c.writeReset(id, http2.ErrCodeStreamClosed)
}

func (c *ClientConn) onReset(f *http2.RSTStreamFrame) error {
	c.mu.Lock()
	s, state := c.streamState(f.StreamID)
	if s != nil {
		c.forget(s)
	}
	c.mu.Unlock()
	if state == streamIdle {
		return connErr(http2.ErrCodeProtocol, "RST_STREAM on stream %d, which was never opened", f.StreamID)
	}
	if s != nil {
		err := &StreamError{StreamID: f.StreamID, Code: f.ErrCode, Remote: true}
		s.fail(err, err)
	}
	return nil
}

func (c *ClientConn) onPing(f *http2.PingFrame) {
	if f.IsAck() {
		select {
		case c.pong <- f.Data:
		default:
		}
		return
	}
	data := f.Data
	c.write(func() error { return c.fr.WritePing(true, data) })
}
