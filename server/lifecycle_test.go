package server_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/porta443/porta/internal/testenv"
	"github.com/porta443/porta/server"
)

// TestServeContext: Serve's ctx is only its requests' parent, as
// http.Server's BaseContext: canceling it does not stop the server;
// Shutdown ends Serve, which returns http.ErrServerClosed. What still
// answers once ctx is canceled shows that it serves on: the plain HTTP
// redirect and HTTP/3. (Not TLS over TCP: net/http runs each handshake
// under the connection's context, which the canceled ctx is the parent of.)
func TestServeContext(t *testing.T) {
	srv, ls, cert := prepare(t, server.Config{}, "127.0.0.1:0")
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ls) }()
	cancel()

	r := &running{srv: srv, cert: cert, addr: ls.TCP.Addr().String(), httpAddr: ls.HTTP.Addr().String()}
	h3 := r.clients(t)["h3"]
	if resp, _ := get(t, h3, newRequest(t, "GET", r.url("/"))); resp.StatusCode != http.StatusOK {
		t.Errorf("HTTP/3 after ctx was canceled: %s", resp.Status)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if resp, _ := get(t, noRedirect, newRequest(t, "GET", "http://"+r.httpAddr+"/")); resp.StatusCode != http.StatusMovedPermanently {
		t.Errorf("plain HTTP after ctx was canceled: %s", resp.Status)
	}
	testenv.ServeOutlivedItsContext(t, served, srv.Shutdown)
}

// TestCloseEndsServe: Close stops a serving server at once, and Serve
// returns http.ErrServerClosed.
func TestCloseEndsServe(t *testing.T) {
	srv, ls, cert := prepare(t, server.Config{}, "")
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background(), ls) }()
	r := &running{srv: srv, cert: cert, addr: ls.TCP.Addr().String()}
	if resp, _ := get(t, r.clients(t)["h2"], newRequest(t, "GET", r.url("/"))); resp.StatusCode != http.StatusOK {
		t.Fatalf("before Close: %s", resp.Status)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
}
