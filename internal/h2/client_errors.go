package h2

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/net/http2"
)

// ErrNotProcessed marks a stream the server did not act on: it never
// reached the server, the server refused it (RST_STREAM REFUSED_STREAM),
// or the server's GOAWAY left it out. A request on it may be sent again on
// another connection (RFC 9113 §8.7).
var ErrNotProcessed = errors.New("h2: not processed by the server")

// StreamError ends one stream: the server reset it (Remote), or the
// client reset it with Code because the server broke the protocol on it.
type StreamError struct {
	StreamID uint32
	Code     http2.ErrCode
	Remote   bool   // the server sent the RST_STREAM
	Reason   string // what the server did, when the client reset the stream
}

func (e *StreamError) Error() string {
	if e.Remote {
		return fmt.Sprintf("h2: stream %d reset by the server: %v", e.StreamID, e.Code)
	}
	return fmt.Sprintf("h2: stream %d reset (%v): %s", e.StreamID, e.Code, e.Reason)
}

// Unwrap makes a REFUSED_STREAM from the server ErrNotProcessed: the
// server did no work on the stream (RFC 9113 §8.7).
func (e *StreamError) Unwrap() error {
	if e.Remote && e.Code == http2.ErrCodeRefusedStream {
		return ErrNotProcessed
	}
	return nil
}

// ConnError ends a connection and every stream on it: the client sent
// GOAWAY with Code because the server broke the protocol, or the server
// went away with an error code of its own (Remote) and closed the
// connection.
type ConnError struct {
	Code   http2.ErrCode
	Remote bool   // the server sent the GOAWAY
	Reason string // what the server did, or the GOAWAY's debug data
}

func (e *ConnError) Error() string {
	if e.Remote {
		return fmt.Sprintf("h2: the server went away with %v: %q", e.Code, e.Reason)
	}
	return fmt.Sprintf("h2: connection error %v: %s", e.Code, e.Reason)
}

// connErr is the error for a connection the server broke.
func connErr(code http2.ErrCode, format string, args ...any) *ConnError {
	return &ConnError{Code: code, Reason: fmt.Sprintf(format, args...)}
}

var (
	errClosed    = errors.New("h2: connection closed")
	errGoingAway = errors.New("the server is going away")
	errIDsUsedUp = errors.New("stream IDs used up")
	errTimeout   = os.ErrDeadlineExceeded
	// errGoAway fails the streams a GOAWAY leaves out.
	errGoAway = fmt.Errorf("%w: it went away before it took the stream", ErrNotProcessed)
)

// errNoWrite is an error that wrote nothing: the connection stays usable.
type errNoWrite struct{ error }

func (e errNoWrite) Unwrap() error { return e.error }
