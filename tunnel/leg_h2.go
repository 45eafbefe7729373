package tunnel

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"
)

// h2Stream is an HTTP/2 stream. net/http cannot end a response while still
// reading the request, so when the target finishes first the stream ends
// (END_STREAM, then the server's RST_STREAM(NO_ERROR)) and the client's
// remaining upload is dropped. A reset is raised by panicking with
// http.ErrAbortHandler from the handler goroutine, which net/http turns into
// RST_STREAM.
type h2Stream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	body    interface{ Read([]byte) (int, error) }
	aborted atomic.Bool
}

func h2Leg(w http.ResponseWriter, r *http.Request) (clientLeg, error) {
	rc := http.NewResponseController(w)
	// A tunnel outlives any http.Server ReadTimeout/WriteTimeout; the
	// relay's idle timeout bounds it instead.
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return nil, fmt.Errorf("tunnel: sending 200: %w", err)
	}
	return &h2Stream{w: w, rc: rc, body: r.Body}, nil
}

func (l *h2Stream) Read(p []byte) (int, error) { return l.body.Read(p) }

func (l *h2Stream) Write(p []byte) error {
	if _, err := l.w.Write(p); err != nil {
		return err
	}
	return l.rc.Flush()
}

func (l *h2Stream) CloseWrite() bool { return false }

func (l *h2Stream) StopRead() { l.rc.SetReadDeadline(time.Now()) }

func (l *h2Stream) Abort() {
	l.aborted.Store(true)
	l.rc.SetReadDeadline(time.Now())
	l.rc.SetWriteDeadline(time.Now())
}

func (l *h2Stream) Finish() {
	if l.aborted.Load() {
		panic(http.ErrAbortHandler)
	}
}
