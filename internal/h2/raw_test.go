package h2

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawConn is an HTTP/2 client made of frames, for tests that misbehave
// on purpose: it writes what it is told and records what comes back.
type rawConn struct {
	t    testing.TB
	tc   *tls.Conn
	fr   *http2.Framer
	henc *hpack.Encoder
	hbuf bytes.Buffer
}

// dialRaw connects to ts over TLS with ALPN h2 and sends the preface and
// settings (none: the RFC's defaults).
func dialRaw(t testing.TB, ts *testServer, settings ...http2.Setting) *rawConn {
	t.Helper()
	tc, err := tls.Dial("tcp", ts.addr, ts.cert.ClientTLS("h2"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	rc := &rawConn{t: t, tc: tc, fr: http2.NewFramer(tc, tc)}
	rc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	rc.fr.SetMaxReadFrameSize(1 << 24)
	rc.henc = hpack.NewEncoder(&rc.hbuf)
	if _, err := io.WriteString(tc, clientPreface); err != nil {
		t.Fatal(err)
	}
	if err := rc.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	return rc
}

// dialTLS makes a TLS connection to ts that chose h2, and sends nothing.
func dialTLS(t testing.TB, ts *testServer) *tls.Conn {
	t.Helper()
	tc, err := tls.Dial("tcp", ts.addr, ts.cert.ClientTLS("h2"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	tc.SetReadDeadline(time.Now().Add(30 * time.Second))
	return tc
}

// block encodes fields (name, value pairs) into a header block.
func (rc *rawConn) block(fields ...string) []byte {
	rc.hbuf.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		rc.henc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return bytes.Clone(rc.hbuf.Bytes())
}

// get sends a GET for path on stream id; end says whether the HEADERS
// carry END_STREAM.
func (rc *rawConn) request(id uint32, method, path string, end bool, extra ...string) {
	rc.t.Helper()
	fields := append([]string{":method", method, ":scheme", "https", ":authority", "localhost", ":path", path}, extra...)
	if err := rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: rc.block(fields...), EndStream: end, EndHeaders: true}); err != nil {
		rc.t.Fatal(err)
	}
}

// read reads the next frame, within d; a connection error or timeout is
// returned as the error.
func (rc *rawConn) read(d time.Duration) (http2.Frame, error) {
	rc.tc.SetReadDeadline(time.Now().Add(d))
	return rc.fr.ReadFrame()
}

// until reads frames until match returns true for one, and returns it;
// it fails the test on a read error or after d.
func (rc *rawConn) until(d time.Duration, what string, match func(http2.Frame) bool) http2.Frame {
	rc.t.Helper()
	deadline := time.Now().Add(d)
	for {
		f, err := rc.read(time.Until(deadline))
		if err != nil {
			rc.t.Fatalf("waiting for %s: %v", what, err)
		}
		if match(f) {
			return f
		}
	}
}

// goAway reads until the server's GOAWAY and returns its code, or fails.
func (rc *rawConn) goAway(d time.Duration) http2.ErrCode {
	rc.t.Helper()
	f := rc.until(d, "GOAWAY", func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok })
	return f.(*http2.GoAwayFrame).ErrCode
}

// closedWithin reports whether the server closes the connection within
// d, reading (and dropping) what it sends meanwhile.
func (rc *rawConn) closedWithin(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		_, err := rc.read(time.Until(deadline))
		if err == nil {
			continue
		}
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
}

// status reads until stream id's response HEADERS and returns :status.
func (rc *rawConn) status(id uint32, d time.Duration) string {
	rc.t.Helper()
	f := rc.until(d, "response headers", func(f http2.Frame) bool {
		if rst, ok := f.(*http2.RSTStreamFrame); ok && rst.StreamID == id {
			rc.t.Fatalf("stream %d reset: %v", id, rst.ErrCode)
		}
		mh, ok := f.(*http2.MetaHeadersFrame)
		return ok && mh.StreamID == id
	})
	return f.(*http2.MetaHeadersFrame).PseudoValue("status")
}

// reset reads until a RST_STREAM for id and returns its code.
func (rc *rawConn) reset(id uint32, d time.Duration) http2.ErrCode {
	rc.t.Helper()
	f := rc.until(d, "RST_STREAM", func(f http2.Frame) bool {
		rst, ok := f.(*http2.RSTStreamFrame)
		return ok && rst.StreamID == id
	})
	return f.(*http2.RSTStreamFrame).ErrCode
}
