package tunnel

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestSlowReader: a client that stops reading holds the target back; what
// the target manages to send is bounded by flow-control windows and socket
// buffers, not buffered without limit in the server.
func TestSlowReader(t *testing.T) {
	run(t, func(t *testing.T, mode string) {
		ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
		var sent atomic.Int64
		target := serveTarget(t, func(c *net.TCPConn) {
			io.ReadFull(c, make([]byte, 2))
			buf := make([]byte, 64<<10)
			for {
				n, err := c.Write(buf)
				sent.Add(int64(n))
				if err != nil {
					return
				}
			}
		})
		c := dialVia(t, ts, mode, target)
		c.Write([]byte("go"))
		// Wait until the target is stuck: nothing more sent for 300 ms.
		last := int64(-1)
		for deadline := time.Now().Add(20 * time.Second); ; {
			time.Sleep(300 * time.Millisecond)
			n := sent.Load()
			if n == last {
				break
			}
			last = n
			if time.Now().After(deadline) {
				t.Fatalf("target still sending after 20 s: %d MiB, unbounded", n>>20)
			}
		}
		// Client stream window 16 MiB, server buffers 2x64 KiB, and kernel
		// socket buffers on two loopback connections.
		const bound = 48 << 20
		if last > bound {
			t.Fatalf("target sent %d MiB to a client that reads nothing; want at most %d", last>>20, bound>>20)
		}
		t.Logf("a client that reads nothing held the target at %.1f MiB", float64(last)/(1<<20))
		// And the tunnel still works once the client reads.
		if _, err := io.ReadFull(c, make([]byte, 8<<20)); err != nil {
			t.Fatal(err)
		}
	})
}

// TestIdleTimeout: a tunnel that moves nothing is closed.
func TestIdleTimeout(t *testing.T) {
	run(t, func(t *testing.T, mode string) {
		ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true, IdleTimeout: 300 * time.Millisecond})
		c := dialVia(t, ts, mode, echoTarget(t))
		c.Write([]byte("x"))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		_, err := c.Read(make([]byte, 1))
		if err == nil || errors.Is(err, errTimeout) {
			t.Fatalf("read on an idle tunnel: %v, want it closed by the server", err)
		}
		waitFor(t, "tunnel to close", 10*time.Second, func() bool { return ts.h.Active() == 0 })
	})
}

// TestHandlerClose: Close ends every tunnel and refuses new ones.
func TestHandlerClose(t *testing.T) {
	run(t, func(t *testing.T, mode string) {
		ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
		target := echoTarget(t)
		c := dialVia(t, ts, mode, target)
		c.Write([]byte("x"))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- ts.h.Close() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Fatal("Close did not return")
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("tunnel still open after Close")
		}
		refused(t, tryTunnel(t, ts, mode, target), 503, "proxy_internal_error")
	})
}

// TestServerTimeoutsSpareTunnels: the server's ReadTimeout and
// WriteTimeout (meant for website requests) do not cut a tunnel short.
func TestServerTimeoutsSpareTunnels(t *testing.T) {
	run(t, func(t *testing.T, mode string) {
		ts := newTunnelServerOpts(t, HandlerConfig{AllowPrivate: true}, serverOpts{configure: func(s *http.Server) {
			s.ReadTimeout = 200 * time.Millisecond
			s.WriteTimeout = 200 * time.Millisecond
		}})
		c := dialVia(t, ts, mode, echoTarget(t))
		for i := range 3 {
			if i > 0 {
				time.Sleep(300 * time.Millisecond)
			}
			c.Write([]byte("x"))
			if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
				t.Fatalf("echo %d, after %d ms: %v", i, 300*i, err)
			}
		}
	})
}
