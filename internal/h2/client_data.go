package h2

import (
	"io"

	"golang.org/x/net/http2"
)

// readData reads a DATA frame's payload from the connection into its
// stream: straight into the buffer of a Read waiting on it if there is one.
// DATA the stream may not have (before the response, after END_STREAM,
// past its window or its Content-Length) resets it and is dropped; all
// of it counts against the connection's window, and goes back to it.
func (c *ClientConn) readData(fh http2.FrameHeader) error {
	if fh.StreamID == 0 {
		return connErr(http2.ErrCodeProtocol, "DATA on stream 0")
	}
	size := int(fh.Length) // what flow control counts, padding included
	padded := fh.Flags.Has(http2.FlagDataPadded)
	pad := 0
	if padded {
		var b [1]byte
		if size == 0 {
			return connErr(http2.ErrCodeProtocol, "padded DATA without a pad length")
		}
		if _, err := io.ReadFull(c.conn, b[:]); err != nil {
			return err
		}
		if pad = int(b[0]); pad > size-1 {
			return connErr(http2.ErrCodeProtocol, "DATA padding longer than the frame")
		}
	}
	dataLen := size - pad
	if padded {
		dataLen--
	}

	c.mu.Lock()
	if int64(size) > c.inflow {
		c.mu.Unlock()
		return connErr(http2.ErrCodeFlowControl, "DATA beyond the connection window")
	}
	c.inflow -= int64(size)
	s, state := c.streamState(fh.StreamID)
	var fault string
	var code http2.ErrCode
	switch {
	case state == streamIdle:
		c.mu.Unlock()
		return connErr(http2.ErrCodeProtocol, "DATA on stream %d, which was never opened", fh.StreamID)
	case s == nil:
	case s.recvEnd:
		code, fault = http2.ErrCodeStreamClosed, "DATA after END_STREAM"
	case !s.final:
		code, fault = http2.ErrCodeProtocol, "DATA before the response"
	case int64(size) > s.inflow:
		code, fault = http2.ErrCodeFlowControl, "DATA beyond the stream window"
	default:
		s.inflow -= int64(size)
		s.gotLen += int64(dataLen)
		if s.wantLen >= 0 && s.gotLen > s.wantLen {
			code, fault = http2.ErrCodeProtocol, "DATA beyond the response's Content-Length"
		}
	}
	c.mu.Unlock()
	if fault != "" {
		c.resetFor(s, code, fault)
		s = nil
	} else if state == streamClosed {
		c.onClosedStream(fh.StreamID)
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

// endRecv marks the end of what the server sends on s: its reads return
// EOF after what they have, unless the body fell short of its
// Content-Length.
func (c *ClientConn) endRecv(s *ClientStream) {
	c.mu.Lock()
	short := s.wantLen >= 0 && s.gotLen != s.wantLen
	if !short {
		s.recvEnd = true
		c.streamDone(s)
	}
	c.mu.Unlock()
	if short {
		c.resetFor(s, http2.ErrCodeProtocol, "a body shorter than its Content-Length")
		return
	}
	s.fail(io.EOF, nil)
}
