package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/porta443/porta/client"
)

// TestShutdownBeforeServe: a Shutdown that comes before Serve has set up
// its servers (Serve may be starting on another goroutine, as in the e2e
// stack) makes Serve close its listeners and return at once. It used to
// serve DNS on, and a test that was skipped right after starting its
// stack waited forever in its cleanup.
func TestShutdownBeforeServe(t *testing.T) {
	cl, err := client.New(client.Config{Servers: []string{"https://alice:token@127.0.0.1:1"}, Bootstrap: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := client.Listen("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cl.Serve(context.Background(), ls) }()
	select {
	case err := <-done:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Fatalf("Serve after Shutdown: %v, want http.ErrServerClosed", err)
		}
	case <-time.After(10 * time.Second):
		ls.Close()
		<-done
		t.Fatal("Serve after Shutdown served on")
	}
	for name, addr := range map[string]string{"DNS": ls.DNSTCP.Addr().String(), "SOCKS": ls.SOCKS.Addr().String(), "HTTP proxy": ls.HTTPProxy.Addr().String()} {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Errorf("the %s listener is still open", name)
		}
	}
}
