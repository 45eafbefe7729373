package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/porta443/porta/client"
	"github.com/porta443/porta/internal/testenv"
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

// TestServeContext: Serve's ctx is only the parent of what it serves, as
// http.Server's BaseContext: canceling it does not stop the client, whose
// DNS still answers its local records; Shutdown ends Serve, which returns
// http.ErrServerClosed. (socks5 and httpproxy test their own Serve.)
func TestServeContext(t *testing.T) {
	records, err := client.ParseRecords([]string{"printer.porta.test=192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(client.Config{Servers: []string{"https://alice:token@127.0.0.1:1"}, Bootstrap: []string{"127.0.0.1:1"}, Records: records})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ls, err := client.Listen("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- cl.Serve(ctx, ls) }()
	cancel()

	q := new(dns.Msg).SetQuestion("printer.porta.test.", dns.TypeA)
	for _, network := range []string{"udp", "tcp"} {
		dc := &dns.Client{Net: network, Timeout: 5 * time.Second}
		resp, _, err := dc.Exchange(q, ls.DNSTCP.Addr().String())
		if err != nil || len(resp.Answer) != 1 {
			t.Fatalf("DNS over %s after ctx was canceled: %v, %v", network, resp, err)
		}
	}
	testenv.ServeOutlivedItsContext(t, served, cl.Shutdown)
}

// TestCloseEndsServe: Close ends Serve as Shutdown does, a Serve with no
// listener at all too (it used to return at once, as if closed).
func TestCloseEndsServe(t *testing.T) {
	for name, listen := range map[string]func() (client.Listeners, error){
		"listeners": func() (client.Listeners, error) { return client.Listen("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0") },
		"none":      func() (client.Listeners, error) { return client.Listeners{}, nil },
	} {
		t.Run(name, func(t *testing.T) {
			cl, err := client.New(client.Config{Servers: []string{"https://alice:token@127.0.0.1:1"}, Bootstrap: []string{"127.0.0.1:1"}})
			if err != nil {
				t.Fatal(err)
			}
			ls, err := listen()
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			serving := make(chan struct{})
			go func() {
				close(serving)
				served <- cl.Serve(context.Background(), ls)
			}()
			<-serving
			select {
			case err := <-served:
				t.Fatalf("Serve returned before Close: %v", err)
			case <-time.After(50 * time.Millisecond): // long enough for a Serve that returns at once
			}
			if err := cl.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			select {
			case err := <-served:
				if !errors.Is(err, http.ErrServerClosed) {
					t.Fatalf("Serve: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Serve did not return after Close")
			}
		})
	}
}
