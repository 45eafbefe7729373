package tunnel

import (
	"io"
	"net/http"
	"sync"
)

// RoundTrip sends an ordinary HTTP request, such as a DoH query, on the
// Dialer's connection to the server, so that it rides the same connection
// as the tunneled streams. The request's URL names the resource; it goes to
// whichever server the Dialer is connected to. RoundTrip makes the Dialer
// an http.RoundTripper.
func (d *Dialer) RoundTrip(req *http.Request) (*http.Response, error) {
	s, err := d.session(req.Context())
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	resp, err := s.roundTrip(req)
	if err != nil {
		d.release(s)
		return nil, err
	}
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: func() { d.release(s) }}
	return resp, nil
}

// releasingBody gives the stream's slot back when the body is closed.
type releasingBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}
