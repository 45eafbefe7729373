package h2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2/hpack"
)

// RoundTrip sends an ordinary request (a DoH query) on c, as an
// http.RoundTripper. The body, if any, is sent on a goroutine of its own
// while the response is awaited (not one of c's: like net/http's, it ends
// when the body's Read does); the request's context ends the stream while
// the response or its body is still coming. An error that wraps
// ErrNotProcessed means the request may be sent again elsewhere.
func (c *ClientConn) RoundTrip(req *http.Request) (*http.Response, error) {
	hasBody := req.Body != nil && req.Body != http.NoBody
	closeBody := func() {
		if req.Body != nil {
			req.Body.Close()
		}
	}
	fields, err := requestFields(req)
	if err != nil {
		closeBody()
		return nil, err
	}
	s := newClientStream(c, fields)
	if err := c.openStream(s, fields, !hasBody); err != nil {
		closeBody()
		return nil, err
	}
	ctx := req.Context()
	stop := context.AfterFunc(ctx, func() { s.closeWith(ctx.Err()) })
	if hasBody {
		go func() {
			body := &readErr{r: req.Body}
			_, err := io.Copy(s, body)
			req.Body.Close()
			switch {
			case body.err != nil: // a request cut short must not look whole
				s.closeWith(fmt.Errorf("h2: request body: %w", body.err))
			case err == nil:
				s.CloseWrite()
			}
			// A write that failed failed with the stream, which ended its
			// read side itself: after what was received, a complete
			// response included (RFC 9113 §8.1), which stays readable.
		}()
	}
	<-s.respCh
	if s.respErr != nil {
		stop()
		s.Close()
		return nil, s.respErr
	}
	resp := &http.Response{
		Status:        strconv.Itoa(s.status) + " " + http.StatusText(s.status),
		StatusCode:    s.status,
		Proto:         "HTTP/2.0",
		ProtoMajor:    2,
		Header:        s.header,
		Body:          &clientBody{s: s, stop: stop},
		ContentLength: -1,
		Request:       req,
	}
	if cl, err := strconv.ParseInt(s.header.Get("Content-Length"), 10, 64); err == nil && cl >= 0 {
		resp.ContentLength = cl
	}
	return resp, nil
}

// readErr is r, keeping the error of its Read (not EOF) apart from those
// of whatever the data is written to.
type readErr struct {
	r   io.Reader
	err error
}

func (b *readErr) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// clientBody is a response body; closing it ends the stream.
type clientBody struct {
	s    *ClientStream
	stop func() bool
}

func (b *clientBody) Read(p []byte) (int, error) { return b.s.Read(p) }

func (b *clientBody) Close() error {
	b.stop()
	return b.s.Close()
}

// requestFields is req's header block: the pseudo-headers, then its
// header fields without the connection-specific ones HTTP/2 forbids.
func requestFields(req *http.Request) ([]hpack.HeaderField, error) {
	if req.URL == nil {
		return nil, errors.New("h2: request without a URL")
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if !httpguts.ValidHostHeader(host) {
		return nil, fmt.Errorf("h2: invalid host %q", host)
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	fields := []hpack.HeaderField{
		{Name: ":method", Value: method},
		{Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: host},
		{Name: ":path", Value: req.URL.RequestURI()},
	}
	for k, vs := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, fmt.Errorf("h2: invalid header name %q", k)
		}
		name := strings.ToLower(k)
		switch name {
		case "host", "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade", "te", "content-length":
			continue
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, fmt.Errorf("h2: invalid value for header %q", k)
			}
			sensitive := name == "authorization" || name == "proxy-authorization"
			fields = append(fields, hpack.HeaderField{Name: name, Value: v, Sensitive: sensitive})
		}
	}
	if req.ContentLength > 0 {
		fields = append(fields, hpack.HeaderField{Name: "content-length", Value: strconv.FormatInt(req.ContentLength, 10)})
	}
	return fields, nil
}
