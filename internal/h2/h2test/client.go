package h2test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// Client is an HTTP/2 client made of frames, for tests of servers that
// misbehave on purpose or write down what a server says: it writes what
// it is told and hands back every frame that comes. Its Framer reads
// header blocks whole (MetaHeadersFrame) and frames up to 16 MiB.
type Client struct {
	*tls.Conn
	frames
	t testing.TB
}

// Dial connects to addr over TLS with conf (which should offer h2) and
// sends the client preface and a SETTINGS with settings (none: the RFC's
// defaults). The connection closes at the test's cleanup.
func Dial(t testing.TB, addr string, conf *tls.Config, settings ...http2.Setting) *Client {
	t.Helper()
	tc, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	c := &Client{Conn: tc, frames: newFrames(tc), t: t}
	c.SetMaxReadFrameSize(1 << 24)
	if _, err := io.WriteString(tc, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	return c
}

// Request sends a request's HEADERS for path on stream id, with the
// extra fields (name, value pairs) after the pseudo-headers; end says
// whether they carry END_STREAM.
func (c *Client) Request(id uint32, method, path string, end bool, extra ...string) {
	c.t.Helper()
	fields := append([]string{":method", method, ":scheme", "https", ":authority", "localhost", ":path", path}, extra...)
	if err := c.Headers(id, end, fields...); err != nil {
		c.t.Fatal(err)
	}
}

// Next reads the next frame, within d; a connection error or the
// timeout is returned as the error.
func (c *Client) Next(d time.Duration) (http2.Frame, error) {
	c.SetReadDeadline(time.Now().Add(d))
	return c.ReadFrame()
}

// Until reads frames until match returns true for one, and returns it;
// it fails the test on a read error or after d.
func (c *Client) Until(d time.Duration, what string, match func(http2.Frame) bool) http2.Frame {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		f, err := c.Next(time.Until(deadline))
		if err != nil {
			c.t.Fatalf("waiting for %s: %v", what, err)
		}
		if match(f) {
			return f
		}
	}
}

// GoAway reads until the server's GOAWAY and returns its code, or fails.
func (c *Client) GoAway(d time.Duration) http2.ErrCode {
	c.t.Helper()
	f := c.Until(d, "GOAWAY", func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok })
	return f.(*http2.GoAwayFrame).ErrCode
}

// ClosedWithin reports whether the server closes the connection within
// d, reading (and dropping) what it sends meanwhile.
func (c *Client) ClosedWithin(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		_, err := c.Next(time.Until(deadline))
		if err == nil {
			continue
		}
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
}

// Status reads until stream id's response HEADERS and returns :status;
// a reset of the stream fails the test.
func (c *Client) Status(id uint32, d time.Duration) string {
	c.t.Helper()
	f := c.Until(d, "response headers", func(f http2.Frame) bool {
		if rst, ok := f.(*http2.RSTStreamFrame); ok && rst.StreamID == id {
			c.t.Fatalf("stream %d reset: %v", id, rst.ErrCode)
		}
		mh, ok := f.(*http2.MetaHeadersFrame)
		return ok && mh.StreamID == id
	})
	return f.(*http2.MetaHeadersFrame).PseudoValue("status")
}

// Reset reads until a RST_STREAM for id and returns its code.
func (c *Client) Reset(id uint32, d time.Duration) http2.ErrCode {
	c.t.Helper()
	f := c.Until(d, "RST_STREAM", func(f http2.Frame) bool {
		rst, ok := f.(*http2.RSTStreamFrame)
		return ok && rst.StreamID == id
	})
	return f.(*http2.RSTStreamFrame).ErrCode
}
