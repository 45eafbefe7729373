package tunnel

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porta443/porta/internal/h2/h2test"
	"golang.org/x/net/http2"
)

// How internal/h2 holds a server to RFC 9113 is its own conformance table
// (internal/h2/client_conformance_test.go); here, what the Dialer makes of
// it.

// A request the server resets with REFUSED_STREAM was not processed
// (RFC 9113 §8.7): RoundTrip sends it once more. This server refuses
// every stream. (net/http's client does not say which of its errors mean
// "not processed", so over h2std RoundTrip does not retry this.)
func TestH2RefusedStreamIsRetried(t *testing.T) {
	var refusals atomic.Int32
	srv := h2test.NewServer(t, h2test.Script{Run: func(c *h2test.Conn, id uint32) {
		for {
			refusals.Add(1)
			if c.WriteRSTStream(id, http2.ErrCodeRefusedStream) != nil {
				return
			}
			var err error
			if id, err = c.NextHeaders(); err != nil { // the next request
				return
			}
		}
	}})
	d, err := NewDialer(DialerConfig{Servers: []string{serverURL(srv.Addr)}, RootCAs: srv.Cert.Pool, Transport: "h2"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+srv.Addr+"/", nil)
	if _, err := d.RoundTrip(req); err == nil {
		t.Fatal("RoundTrip succeeded against a server that refuses every stream")
	}
	if n := refusals.Load(); n != 2 {
		t.Fatalf("the server refused %d streams; want 2 (the request, then its one retry)", n)
	}
}
