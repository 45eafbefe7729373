package tunnel

import (
	"errors"
	"io"
	"net/http"
	"sync"
)

// RoundTrip sends an ordinary HTTP request, such as a DoH query, on the
// Dialer's connection to the server, so that it rides the same connection
// as the tunneled streams. The request's URL names the resource; it goes to
// whichever server the Dialer is connected to. RoundTrip makes the Dialer
// an http.RoundTripper.
//
// A request the server did not process (the connection ended, or went
// away, before the server took it) is sent once more on a live connection
// when its body can be had again (GetBody), as net/http does.
func (d *Dialer) RoundTrip(req *http.Request) (*http.Response, error) {
	for retried := false; ; retried = true {
		s, err := d.session(req.Context())
		if err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
		resp, err := s.roundTrip(req)
		if err == nil {
			resp.Body = &releasingBody{ReadCloser: resp.Body, release: func() { d.release(s) }}
			return resp, nil
		}
		d.release(s)
		if retried || !errors.Is(err, errNotProcessed) {
			return nil, err
		}
		again, ok := rewound(req)
		if !ok {
			return nil, err
		}
		req = again
	}
}

// rewound is req again, with its body from the start, for a second try;
// the caller's request is left as it was. ok is false when the body
// cannot be had again.
func rewound(req *http.Request) (again *http.Request, ok bool) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, true
	}
	if req.GetBody == nil {
		return nil, false
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, false
	}
	again = req.Clone(req.Context())
	again.Body = body
	return again, true
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
