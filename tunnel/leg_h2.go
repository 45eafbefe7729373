package tunnel

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/porta443/porta/internal/h2"
	"golang.org/x/net/http2"
)

// newH2Leg is the client's side of an HTTP/2 tunnel: a true half-close
// when the server's HTTP/2 is internal/h2's, and net/http's otherwise.
func newH2Leg(w http.ResponseWriter, r *http.Request) (clientLeg, error) {
	rc := http.NewResponseController(w)
	// A tunnel outlives any http.Server ReadTimeout/WriteTimeout; the
	// relay's idle timeout bounds it instead.
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return nil, fmt.Errorf("tunnel: sending 200: %w", err)
	}
	if hw, ok := w.(h2Writer); ok {
		return &h2Leg{w: hw, body: r.Body}, nil
	}
	return &stdH2Leg{w: w, rc: rc, body: r.Body}, nil
}

// h2Writer is what internal/h2's ResponseWriter offers beyond net/http's.
type h2Writer interface {
	http.ResponseWriter
	FlushError() error
	SetReadDeadline(time.Time) error
	h2.CloseWriter
	h2.Resetter
}

// h2Leg is an HTTP/2 stream served by internal/h2: when the target
// finishes first the response ends (END_STREAM) and the client's upload
// goes on until it ends too, as over HTTP/1.1 and HTTP/3.
type h2Leg struct {
	w    h2Writer
	body interface{ Read([]byte) (int, error) }
}

func (l *h2Leg) Read(p []byte) (int, error) { return l.body.Read(p) }

func (l *h2Leg) Write(p []byte) error {
	if _, err := l.w.Write(p); err != nil {
		return err
	}
	return l.w.FlushError()
}

func (l *h2Leg) CloseWrite() bool {
	l.w.CloseWrite()
	return true
}

func (l *h2Leg) StopRead() { l.w.SetReadDeadline(time.Now()) }

// Abort resets the stream with CONNECT_ERROR, as RFC 9113 §8.5 asks when
// the TCP connection of a CONNECT fails.
func (l *h2Leg) Abort() { l.w.Reset(http2.ErrCodeConnect) }

func (l *h2Leg) Finish() {}

// stdH2Leg is an HTTP/2 stream served by net/http, which cannot end a
// response while still reading the request: when the target finishes
// first the stream ends (END_STREAM, then the server's RST_STREAM
// (NO_ERROR)) and the client's remaining upload is dropped. A reset is
// raised by panicking with http.ErrAbortHandler from the handler
// goroutine, which net/http turns into RST_STREAM.
type stdH2Leg struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	body    interface{ Read([]byte) (int, error) }
	aborted atomic.Bool
}

func (l *stdH2Leg) Read(p []byte) (int, error) { return l.body.Read(p) }

func (l *stdH2Leg) Write(p []byte) error {
	if _, err := l.w.Write(p); err != nil {
		return err
	}
	return l.rc.Flush()
}

func (l *stdH2Leg) CloseWrite() bool { return false }

func (l *stdH2Leg) StopRead() { l.rc.SetReadDeadline(time.Now()) }

func (l *stdH2Leg) Abort() {
	l.aborted.Store(true)
	l.rc.SetReadDeadline(time.Now())
	l.rc.SetWriteDeadline(time.Now())
}

func (l *stdH2Leg) Finish() {
	if l.aborted.Load() {
		panic(http.ErrAbortHandler)
	}
}
