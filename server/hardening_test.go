package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/porta443/porta/server"
)

// TestSlowHeadersAreCutOff: a client that trickles its request headers is
// disconnected once ReadHeaderTimeout passes, and so is one that opens TCP
// and never starts TLS.
func TestSlowHeadersAreCutOff(t *testing.T) {
	const timeout = 500 * time.Millisecond
	r := start(t, server.Config{ReadHeaderTimeout: timeout}, false)

	t.Run("trickled headers", func(t *testing.T) {
		// The server's limit runs from the accept, and covers the TLS
		// handshake too: the clock starts before the dial, so that the
		// cut-off is never seen early.
		begun := time.Now()
		conn, err := tls.Dial("tcp", r.addr, r.cert.ClientTLS("http/1.1"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n")
		closed := make(chan error, 1)
		go func() {
			_, err := io.ReadAll(conn) // returns when the server closes
			closed <- err
		}()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-closed:
				if d := time.Since(begun); d < timeout {
					t.Fatalf("cut off after %v, before the timeout", d)
				}
				return
			case <-tick.C:
				if time.Since(begun) > 20*timeout {
					t.Fatal("a client trickling headers was never cut off")
				}
				io.WriteString(conn, "X-A: b\r\n")
			}
		}
	})
	t.Run("no TLS handshake", func(t *testing.T) {
		conn, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(20 * timeout))
		_, err = conn.Read(make([]byte, 1))
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			t.Fatal("a silent TCP connection was never closed")
		}
	})
}

func TestHugeHeadersAreRefused(t *testing.T) {
	eachHTTP2(t, func(t *testing.T) {
		r := start(t, server.Config{MaxHeaderBytes: 8 << 10}, false)
		for name, c := range r.clients(t) {
			req := newRequest(t, "GET", r.url("/"))
			req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
			resp, err := c.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
					t.Errorf("%s: %d, want 431 or a refused request", name, resp.StatusCode)
				}
			}
			// The server goes on serving.
			if resp, _ := get(t, c, newRequest(t, "GET", r.url("/"))); resp.StatusCode != 200 {
				t.Errorf("%s after a huge header: %d", name, resp.StatusCode)
			}
		}
	})
}

// TestShutdownBeforeServe: a Shutdown that comes before Serve has set up
// its servers (Serve may be starting on another goroutine) makes Serve
// close its listeners and return at once, as net/http's does. It used to
// serve on, and whoever waited for it after Shutdown waited forever.
func TestShutdownBeforeServe(t *testing.T) {
	srv, ls, _ := prepare(t, server.Config{}, "")
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ls) }()
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
	if c, err := net.Dial("tcp", ls.TCP.Addr().String()); err == nil {
		c.Close()
		t.Fatal("the TCP listener is still open")
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("Close after Shutdown: %v", err)
	}
}

// TestShutdownDrains: a request in flight when Shutdown begins completes;
// new connections are refused.
func TestShutdownDrains(t *testing.T) {
	eachHTTP2(t, func(t *testing.T) {
		release := make(chan struct{})
		r := startNoCleanup(t, server.Config{SiteProxy: backend(t, release)})
		c := r.clients(t)["h2"]
		resp, err := c.Do(newRequest(t, "GET", r.url("/stream")))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()

		shutdown := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			shutdown <- r.srv.Shutdown(ctx)
		}()
		// Wait until the listener is closed.
		for i := 0; ; i++ {
			conn, err := net.Dial("tcp", r.addr)
			if err != nil {
				break
			}
			conn.Close()
			if i > 100 {
				t.Fatal("still accepting after Shutdown")
			}
			time.Sleep(20 * time.Millisecond)
		}
		close(release)
		body, err := io.ReadAll(resp.Body)
		if err != nil || string(body) != "data: first\n\ndata: second\n\n" {
			t.Fatalf("in-flight response: %q %v", body, err)
		}
		if err := <-shutdown; err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if err := <-r.done; !errors.Is(err, http.ErrServerClosed) {
			t.Fatalf("Serve: %v", err)
		}
	})
}

type unmanaged struct {
	*running
	done chan error
}

func startNoCleanup(t *testing.T, cfg server.Config) unmanaged {
	t.Helper()
	srv, ls, cert := prepare(t, cfg, "")
	r := &running{srv: srv, cert: cert, addr: ls.TCP.Addr().String()}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ls) }()
	return unmanaged{r, done}
}
