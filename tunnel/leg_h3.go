package tunnel

import (
	"fmt"
	"net/http"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// h3Leg is an HTTP/3 request stream taken over after the 200, which
// allows a true half-close: FIN toward the client while still reading.
type h3Leg struct {
	str *http3.Stream
}

func newH3Leg(w http.ResponseWriter) (clientLeg, error) {
	str, err := takeH3Stream(w)
	if err != nil {
		return nil, err
	}
	return &h3Leg{str: str}, nil
}

// takeH3Stream answers 200 and takes the request stream over from quic-go.
func takeH3Stream(w http.ResponseWriter) (*http3.Stream, error) {
	hs, ok := w.(http3.HTTPStreamer)
	if !ok {
		return nil, fmt.Errorf("%w: HTTP/3 response writer without HTTPStream", errNotSupported)
	}
	w.WriteHeader(http.StatusOK)
	str, err := hs.HTTPStream() // sends the header
	if err != nil {
		return nil, fmt.Errorf("tunnel: sending 200: %w", err)
	}
	return str, nil
}

func (l *h3Leg) Read(p []byte) (int, error) { return l.str.Read(p) }
func (l *h3Leg) Write(p []byte) error {
	_, err := l.str.Write(p)
	return err
}
func (l *h3Leg) CloseWrite() bool {
	l.str.Close()
	return true
}
func (l *h3Leg) StopRead() { l.str.SetReadDeadline(time.Now()) }
func (l *h3Leg) Abort() {
	l.str.CancelRead(quic.StreamErrorCode(http3.ErrCodeConnectError))
	l.str.CancelWrite(quic.StreamErrorCode(http3.ErrCodeConnectError))
}
func (l *h3Leg) Finish() {
	l.str.CancelRead(quic.StreamErrorCode(http3.ErrCodeNoError)) // no-op after EOF
	l.str.Close()
}
