package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/porta443/porta/internal/h2"
)

// session is one live connection to a server, over HTTP/2 or HTTP/3.
type session interface {
	// open sends a CONNECT for target and returns its stream without
	// waiting for the response.
	open(ctx context.Context, target string) (clientStream, error)
	// openUDP sends a CONNECT-UDP for target and returns its flow
	// without waiting for the response.
	openUDP(ctx context.Context, target string) (clientFlow, error)
	alive() bool
	proto() string
	close() error
	newConn(target string) net.Conn
	// reserve takes a stream slot if fewer than max are taken; the conn
	// made with it gives it back with release.
	reserve(max int) bool
	release()
	inUse() int64
	// roundTrip sends an ordinary request (DoH, say) on the connection.
	roundTrip(req *http.Request) (*http.Response, error)
}

// slots counts a session's tunneled connections.
type slots struct{ n atomic.Int64 }

func (s *slots) reserve(max int) bool {
	if s.n.Add(1) > int64(max) {
		s.n.Add(-1)
		return false
	}
	return true
}

func (s *slots) release() { s.n.Add(-1) }

func (s *slots) inUse() int64 { return s.n.Load() }

// clientStream is one CONNECT stream seen from the client.
type clientStream interface {
	Write(p []byte) (int, error)
	// response waits for the server's answer, or until the read deadline
	// passes or ctx ends, and returns nil for a 2xx.
	response(ctx context.Context) error
	Read(p []byte) (int, error)
	CloseWrite() error
	// Close ends the stream, resetting it if it is not done.
	Close() error
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

// RefusedError is the error a tunneled connection's Read or Write returns
// when the server answered its CONNECT with something other than 2xx.
type RefusedError struct {
	Status      int    // the HTTP status
	ProxyStatus string // the Proxy-Status header, if any (RFC 9209)
}

func (e *RefusedError) Error() string {
	s := fmt.Sprintf("tunnel: server refused: %d %s", e.Status, http.StatusText(e.Status))
	if e.ProxyStatus != "" {
		s += " (" + e.ProxyStatus + ")"
	}
	return s
}

// HTTPStatus is the status the server answered, for an HTTP proxy that
// passes the refusal on.
func (e *RefusedError) HTTPStatus() int { return e.Status }

func checkResponse(resp *http.Response) error {
	err := refusal(resp.StatusCode, resp.Header)
	if err != nil {
		resp.Body.Close()
	}
	return err
}

// refusal is the answer to a CONNECT with status and header as an error:
// nil for 2xx, else a *RefusedError.
func refusal(status int, h http.Header) error {
	if status/100 == 2 {
		return nil
	}
	return &RefusedError{Status: status, ProxyStatus: h.Get("Proxy-Status")}
}

// connectRequest is the CONNECT for target, authenticated as si's user.
func connectRequest(ctx context.Context, si *serverInfo, target string) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, http.MethodConnect, "https://"+si.addr, nil)
	req.Host = target
	req.Header.Set("Proxy-Authorization", si.auth)
	return req
}

// errTimeout is returned by a read or write past its deadline.
var errTimeout = os.ErrDeadlineExceeded

// errNotProcessed marks a stream the server did not act on: it never
// reached the server, or the server refused it or went away before it
// took it. A request on it may be sent again on another connection (RFC
// 9113 §8.7).
var errNotProcessed = h2.ErrNotProcessed

// connectErr is err, why a CONNECT has no answer, as response returns
// it: a deadline or ctx as they are (net.Error's Timeout sees through
// nothing else), the rest marked as the CONNECT's.
func connectErr(ctx context.Context, err error) error {
	if errors.Is(err, errTimeout) || ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return err
	}
	return fmt.Errorf("tunnel: CONNECT: %w", err)
}
