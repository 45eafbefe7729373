package tunnel

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/net/http2"
)

// readLoop reads frames until the connection ends, and ends it with the
// reason.
func (c *h2Conn) readLoop() {
	defer c.wg.Done()
	err := c.readFrames()
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		// Tell the server why, but briefly: a writer stuck on a dead
		// path holds the write lock, and the deadline frees it too;
		// until fail runs below, nothing else ends the connection.
		c.conn.SetWriteDeadline(time.Now().Add(time.Second))
		c.write(func() error { return c.fr.WriteGoAway(0, http2.ErrCode(ce), nil) })
	}
	if errors.Is(err, io.EOF) {
		err = errors.New("server closed the connection")
	}
	c.fail(fmt.Errorf("h2: %w", err))
}

func (c *h2Conn) readFrames() error {
	for {
		fh, err := c.fr.ReadFrameHeader()
		if err != nil {
			return err
		}
		c.lastFrame.Store(time.Now().UnixNano())
		if fh.Type == http2.FrameData {
			if err := c.readData(fh); err != nil {
				return err
			}
			continue
		}
		f, err := c.fr.ReadFrameForHeader(fh)
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				if s := c.stream(se.StreamID); s != nil {
					c.resetWith(s, se.Code, se)
				}
				continue
			}
			return err
		}
		if err := c.handle(f); err != nil {
			return err
		}
	}
}

func (c *h2Conn) stream(id uint32) *h2ClientStream {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streams[id]
}

func (c *h2Conn) handle(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		c.onHeaders(f)
	case *http2.RSTStreamFrame:
		c.mu.Lock()
		s := c.streams[f.StreamID]
		if s != nil {
			c.forget(s)
		}
		c.mu.Unlock()
		if s != nil {
			err := resetError{f.ErrCode}
			s.fail(err, err)
		}
	case *http2.SettingsFrame:
		return c.onSettings(f)
	case *http2.WindowUpdateFrame:
		return c.onWindowUpdate(f)
	case *http2.PingFrame:
		if f.IsAck() {
			select {
			case c.pong <- f.Data:
			default:
			}
			return nil
		}
		data := f.Data
		c.write(func() error { return c.fr.WritePing(true, data) })
	case *http2.GoAwayFrame:
		c.onGoAway(f)
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol) // we sent ENABLE_PUSH 0
	}
	return nil // PRIORITY and unknown frames are ignored (RFC 9113 §5.5)
}

// errFlowControl fails a stream we reset because the server sent past its
// window or grew ours past 2^31-1.
var errFlowControl = errors.New("h2: the server broke flow control; stream reset")

// resetError is a stream the server reset.
type resetError struct{ code http2.ErrCode }

func (e resetError) Error() string { return "h2: stream reset by the server: " + e.code.String() }

// Unwrap makes REFUSED_STREAM errNotProcessed: the server did no work on
// the stream (RFC 9113 §8.7), so a request on it may go again.
func (e resetError) Unwrap() error {
	if e.code == http2.ErrCodeRefusedStream {
		return errNotProcessed
	}
	return nil
}

// readData reads a DATA frame's payload from the connection into its
// stream: straight into the buffer of a Read waiting on it if there is one.
func (c *h2Conn) readData(fh http2.FrameHeader) error {
	if fh.StreamID == 0 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	size := int(fh.Length) // what flow control counts, padding included
	padded := fh.Flags.Has(http2.FlagDataPadded)
	pad := 0
	if padded {
		var b [1]byte
		if size == 0 {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if _, err := io.ReadFull(c.conn, b[:]); err != nil {
			return err
		}
		if pad = int(b[0]); pad > size-1 {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
	}
	dataLen := size - pad
	if padded {
		dataLen--
	}

	c.mu.Lock()
	if int64(size) > c.inflow {
		c.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	c.inflow -= int64(size)
	s := c.streams[fh.StreamID]
	overflow := false
	if s != nil {
		if int64(size) > s.inflow {
			overflow = true
		} else {
			s.inflow -= int64(size)
		}
	}
	c.mu.Unlock()
	if overflow {
		c.resetWith(s, http2.ErrCodeFlowControl, errFlowControl)
		s = nil
	}

	dropped := size - dataLen // the pad length and the padding
	if s == nil {
		// A stream that is gone: the bytes only go back to the
		// connection's window.
		if _, err := io.CopyN(io.Discard, c.conn, int64(dataLen)); err != nil {
			return err
		}
		dropped = size
	} else {
		n, err := s.receive(c.conn, dataLen)
		if err != nil {
			return err
		}
		dropped += dataLen - n
	}
	if pad > 0 {
		if _, err := io.CopyN(io.Discard, c.conn, int64(pad)); err != nil {
			return err
		}
	}
	c.consumed(s, dropped)
	if s != nil && fh.Flags.Has(http2.FlagDataEndStream) {
		c.endRecv(s)
	}
	return nil
}

// endRecv marks the end of what the server sends on s.
func (c *h2Conn) endRecv(s *h2ClientStream) {
	c.mu.Lock()
	s.recvEnd = true
	c.streamDone(s)
	c.mu.Unlock()
	s.fail(io.EOF, nil)
}

func (c *h2Conn) onHeaders(f *http2.MetaHeadersFrame) {
	s := c.stream(f.StreamID)
	if s == nil {
		return
	}
	if !s.hasResponse() {
		code, err := strconv.Atoi(f.PseudoValue("status"))
		if err != nil || code < 100 || code > 999 {
			c.resetWith(s, http2.ErrCodeProtocol, errors.New("h2: response without a valid :status"))
			return
		}
		if code < 200 {
			return // 1xx: the real response follows
		}
		h := make(http.Header, len(f.Fields))
		for _, hf := range f.RegularFields() {
			h.Add(http.CanonicalHeaderKey(hf.Name), hf.Value)
		}
		s.respond(code, h, nil)
	}
	// Trailers, or the end of a response without a body.
	if f.StreamEnded() {
		c.endRecv(s)
	}
}

func (c *h2Conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	var tableSize uint32
	var hasTableSize bool
	c.mu.Lock()
	err := f.ForeachSetting(func(st http2.Setting) error {
		if err := st.Valid(); err != nil {
			return err
		}
		switch st.ID {
		case http2.SettingInitialWindowSize:
			delta := int64(st.Val) - int64(c.peerWindow)
			c.peerWindow = int32(st.Val)
			for _, s := range c.streams {
				s.outflow += delta
				if s.outflow > h2MaxWindow {
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
			}
			c.wakeBlocked()
		case http2.SettingMaxFrameSize:
			c.peerFrame = int(st.Val)
		case http2.SettingMaxConcurrentStreams:
			c.peerMaxStreams.Store(st.Val)
		case http2.SettingHeaderTableSize:
			tableSize, hasTableSize = st.Val, true
		}
		return nil
	})
	c.mu.Unlock()
	if err != nil {
		return err
	}
	c.write(func() error {
		if hasTableSize {
			c.henc.SetMaxDynamicTableSizeLimit(tableSize)
		}
		return c.fr.WriteSettingsAck()
	})
	return nil
}

func (c *h2Conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	inc := int64(f.Increment)
	c.mu.Lock()
	if f.StreamID == 0 {
		c.outflow += inc
		overflow := c.outflow > h2MaxWindow
		c.wakeBlocked()
		c.mu.Unlock()
		if overflow {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		return nil
	}
	s := c.streams[f.StreamID]
	if s == nil {
		c.mu.Unlock()
		return nil
	}
	s.outflow += inc
	overflow := s.outflow > h2MaxWindow
	if _, ok := c.blocked[s]; ok {
		delete(c.blocked, s)
		s.wakeWriter()
	}
	c.mu.Unlock()
	if overflow {
		c.resetWith(s, http2.ErrCodeFlowControl, errFlowControl)
	}
	return nil
}

// errNotProcessed marks a stream the server did not act on: it never
// reached the server, or the server's GOAWAY says it was left alone. A
// request on it may be sent again on another connection (RFC 9113 §8.7).
var errNotProcessed = errors.New("h2: not processed by the server")

// errGoAway fails the streams a GOAWAY leaves out.
var errGoAway = fmt.Errorf("%w: it went away before it took the stream", errNotProcessed)

func (c *h2Conn) onGoAway(f *http2.GoAwayFrame) {
	c.mu.Lock()
	c.goAway = true
	var refused []*h2ClientStream
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
