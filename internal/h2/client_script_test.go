package h2

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/porta443/porta/internal/h2/h2test"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// connectFields open a CONNECT stream, as the tunnel does.
var connectFields = []hpack.HeaderField{
	{Name: ":method", Value: http.MethodConnect},
	{Name: ":authority", Value: "example.com:443"},
}

// getFields open a GET that ends the request with its HEADERS.
var getFields = []hpack.HeaderField{
	{Name: ":method", Value: http.MethodGet},
	{Name: ":scheme", Value: "https"},
	{Name: ":authority", Value: "example.com"},
	{Name: ":path", Value: "/"},
}

// testConfig is the client's configuration in the scripted tests: small
// stream windows and large frames, so that a script can overrun a window
// with one frame; no health check.
func testConfig() *http.HTTP2Config {
	return &http.HTTP2Config{
		MaxReceiveBufferPerStream: 64 << 10,
		MaxReadFrameSize:          1 << 20,
		PingTimeout:               10 * time.Second,
	}
}

// dialScript connects a ClientConn to srv; it is closed at cleanup.
func dialScript(t *testing.T, srv *h2test.Server, cfg *http.HTTP2Config) *ClientConn {
	t.Helper()
	tc, err := tls.Dial("tcp", srv.Addr, srv.ClientTLS())
	if err != nil {
		t.Fatal(err)
	}
	cc, err := NewClientConn(tc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// outcome is how a stream ended for the client: what it read, and the
// error that ended it (nil: a clean EOF).
type outcome struct {
	data string
	err  error
}

// readStream awaits st's response and reads it to the end, within 10 s:
// what the server sent is all there by then, unless the client hangs.
func readStream(st *ClientStream) outcome {
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := st.AwaitResponse(context.Background()); err != nil {
		return outcome{err: err}
	}
	b, err := io.ReadAll(st)
	return outcome{data: string(b), err: err}
}

// waitReaction waits for the client to send a frame like want
// (RST_STREAM or GOAWAY with its code), or to close the connection; 30 s
// at most, which only a client that never reacts waits out.
func waitReaction(srv *h2test.Server, want h2test.Reaction) (h2test.Reaction, bool) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := srv.WaitReaction(time.Until(deadline))
		if err != nil {
			return r, false
		}
		if r.Type == want.Type && r.Code == want.Code || r.Closed {
			return r, r.Type == want.Type && r.Code == want.Code
		}
	}
}

// ending is how a conformance row must end: an error (in which a
// StreamID of 0 means the stream under test), and the frame the client
// sends to say so.
type ending struct {
	err   error // compared with matchErr
	react *h2test.Reaction
	clean bool // a clean EOF: the stream had ended before the fault
}

// wantStreamErr: the client resets the stream with code.
func wantStreamErr(code http2.ErrCode) ending {
	return ending{err: &StreamError{Code: code}, react: &h2test.Reaction{Type: http2.FrameRSTStream, Code: code}}
}

// wantConnErr: the client ends the connection with GOAWAY(code).
func wantConnErr(code http2.ErrCode) ending {
	return ending{err: &ConnError{Code: code}, react: &h2test.Reaction{Type: http2.FrameGoAway, Code: code}}
}

// wantClosedStreamErr: the stream had ended cleanly, and the client answers
// the frame that came after with RST_STREAM(STREAM_CLOSED).
func wantClosedStreamErr() ending {
	e := wantStreamErr(http2.ErrCodeStreamClosed)
	e.err, e.clean = nil, true
	return e
}

// wantErr is any error that is not a deadline: the server ended things
// without breaking the protocol, or broke it beyond saying so.
func wantErr(err error) ending { return ending{err: err} }

// errAny stands for any error but a timeout.
var errAny = errors.New("any error")

// matchErr says how got differs from want, or "".
func matchErr(got, want error) string {
	if errors.Is(got, errTimeout) {
		return fmt.Sprintf("hung until the deadline (%v)", got)
	}
	switch w := want.(type) {
	case nil:
		if got != nil {
			return fmt.Sprintf("error %v; want a clean EOF", got)
		}
	case *StreamError:
		g, ok := errors.AsType[*StreamError](got)
		if !ok || g.Code != w.Code || g.Remote != w.Remote {
			return fmt.Sprintf("error %v; want a stream error %v (remote %v)", got, w.Code, w.Remote)
		}
	case *ConnError:
		g, ok := errors.AsType[*ConnError](got)
		if !ok || g.Code != w.Code || g.Remote != w.Remote {
			return fmt.Sprintf("error %v; want a connection error %v (remote %v)", got, w.Code, w.Remote)
		}
	default:
		if got == nil {
			return fmt.Sprintf("a clean EOF; want an error (%v)", want)
		}
		if want != errAny && !errors.Is(got, want) {
			return fmt.Sprintf("error %v; want %v", got, want)
		}
	}
	return ""
}
