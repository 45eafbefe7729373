package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/porta443/porta/internal/testenv"
	"github.com/porta443/porta/server"
	"github.com/porta443/porta/tunnel"
)

// TestFetch runs a porta server on loopback (self-signed, trusted by its
// pin; a loopback upstream, never the system's resolver) and fetches a
// page from a loopback website through its tunnel, over each transport.
func TestFetch(t *testing.T) {
	token := tunnel.NewToken()
	srv, err := server.New(server.Config{
		SelfSigned:   true,
		StateDir:     t.TempDir(),
		Upstreams:    []string{testenv.NewUpstream(t, nil).URL()},
		Users:        []string{"alice:" + token},
		AllowPrivate: true, // the website is on loopback
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ls, err := server.Listen("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background(), ls) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	}()

	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "through the tunnel\n")
	}))
	defer site.Close()

	for _, transport := range []string{"h2", "h3"} {
		t.Run(transport, func(t *testing.T) {
			d, err := tunnel.NewDialer(tunnel.DialerConfig{
				Servers:   []string{"https://alice:" + token + "@" + ls.TCP.Addr().String()},
				Pin:       srv.Pin(),
				Transport: transport,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			body, err := fetch(t.Context(), d, site.URL+"/")
			if err != nil || string(body) != "through the tunnel\n" {
				t.Fatalf("fetch: %q, %v", body, err)
			}
			if n := d.Stats(); n.ConnectFailures != 0 {
				t.Errorf("%d failures to connect to the server", n.ConnectFailures)
			}
		})
	}
}
