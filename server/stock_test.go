package server_test

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/porta443/porta/internal/h2/h2test"
	"github.com/porta443/porta/internal/testenv"
	"github.com/porta443/porta/server"
)

// TestHTTP2LooksStock: what a client sees of HTTP/2 before it sends a
// request (SETTINGS, the connection's WINDOW_UPDATE) is what a stock
// net/http server on Go's defaults sends, with users configured or not:
// HTTP/2 settings of one's own would tell porta from the site it fronts.
// (Caddy and most Go sites send these.)
func TestHTTP2LooksStock(t *testing.T) {
	stock := firstFrames(t, stockServer(t))
	for name, cfg := range map[string]server.Config{
		"with users":    {Users: []string{"alice:alice-token"}},
		"without users": {},
	} {
		r := start(t, cfg, false)
		if got := firstFrames(t, r.addr); got != stock {
			t.Errorf("porta server %s sends\n%s\na stock net/http server sends\n%s", name, got, stock)
		}
	}
}

// stockServer is an http.Server with net/http's defaults, on TLS.
func stockServer(t *testing.T) string {
	cert := testenv.NewCert(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{
		Handler:   http.NotFoundHandler(),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert.TLS}},
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.ServeTLS(ln, "", "")
	}()
	t.Cleanup(func() {
		hs.Close()
		<-done
	})
	return ln.Addr().String()
}

// firstFrames connects with HTTP/2 and writes down the server's SETTINGS
// and WINDOW_UPDATE before any request (in a stable order).
func firstFrames(t *testing.T, addr string) string {
	t.Helper()
	c := h2test.Dial(t, addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN %q", p)
	}
	var seen []string
	for {
		f, err := c.Next(500 * time.Millisecond)
		if err != nil {
			break // the server has said what it says unasked
		}
		seen = append(seen, h2test.Describe(f))
	}
	slices.Sort(seen)
	return strings.Join(seen, "\n")
}
