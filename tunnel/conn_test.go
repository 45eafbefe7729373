package tunnel

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"
)

// A tunnel whose CONNECT must go on a new connection (the one it was
// dialed on went away first) does not hold up the connection's other
// calls while that connection is made: deadlines, addresses and Close
// answer at once, and Close ends the Write that waits.
func TestConnCallsDoNotWaitForAReconnect(t *testing.T) {
	runOver(t, h2Modes, testConnCallsDoNotWaitForAReconnect)
}

func testConnCallsDoNotWaitForAReconnect(t *testing.T, mode string) {
	var hs *http.Server
	a := newTunnelServerOpts(t, HandlerConfig{AllowPrivate: true}, serverOpts{configure: func(s *http.Server) { hs = s }})
	// b takes TCP connections and never answers the TLS handshake.
	hole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := hole.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		hole.Close()
		for c := range accepted {
			c.Close()
		}
	})
	d, err := NewDialer(withMode(mode, DialerConfig{
		Servers:        []string{serverURL(a.addr), serverURL(hole.Addr().String())},
		RootCAs:        a.cert.Pool,
		ConnectTimeout: 20 * time.Second,
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	target := echoTarget(t)
	first := pingTunnel(t, d, target) // keeps a's connection open as it goes away
	c, err := d.DialContext(context.Background(), "tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	shut := shutdownLater(hs)
	waitFor(t, "the GOAWAY", 5*time.Second, func() bool { return d.Protocol() == "" })

	wrote := make(chan error, 1)
	go func() { _, err := c.Write([]byte("ping")); wrote <- err }()
	select { // the Write's CONNECT now waits for a connection to b
	case <-accepted:
	case err := <-wrote:
		t.Fatalf("the Write ended before it reached the second server: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the second server was never dialed")
	}
	answered := make(chan struct{})
	go func() {
		c.SetReadDeadline(time.Now().Add(time.Hour))
		c.SetWriteDeadline(time.Now().Add(time.Hour))
		c.LocalAddr()
		c.RemoteAddr()
		close(answered)
	}()
	select {
	case <-answered:
	case <-time.After(5 * time.Second):
		t.Fatal("deadlines and addresses wait while the tunnel's connection is being made")
	}
	c.Close()
	select {
	case err := <-wrote:
		if err == nil {
			t.Fatal("the Write succeeded on a closed connection")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the Write waiting for a connection")
	}
	first.Close()
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// Established waits for the answer and for its ctx itself: calls whose
// ctx ends before the answer leave nothing behind waiting for it.
func TestEstablishedLeavesNothingWaiting(t *testing.T) {
	for _, mode := range dialerModes {
		t.Run(mode, func(t *testing.T) {
			res := &blockingResolver{called: make(chan string, 1), release: make(chan struct{})}
			ts := newTunnelServer(t, HandlerConfig{Resolver: res, AllowPrivate: true})
			target := echoTarget(t)
			d := newDialer(t, ts, mode, testUser, testToken)
			pingTunnel(t, d, target) // a warm tunnel: no connect below
			c, err := d.DialContext(context.Background(), "tcp", "slow.example:"+itoa(portOf(target)))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tc := c.(*tunnelConn)
			established := func(timeout time.Duration) error {
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				return tc.Established(ctx)
			}
			if err := established(50 * time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Established before the answer: %v, want the ctx's deadline", err)
			}
			<-res.called // the CONNECT is at the server, which resolves
			before := runtime.NumGoroutine()
			const calls = 20
			for range calls {
				if err := established(time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Established: %v, want the ctx's deadline", err)
				}
			}
			if n := runtime.NumGoroutine() - before; n >= calls/2 {
				t.Fatalf("%d goroutines more after %d calls of Established whose ctx ended", n, calls)
			}
			close(res.release)
			if mode == "h3" {
				return // a ctx that ended has ended the stream (quic-go reads the answer without one)
			}
			if err := established(10 * time.Second); err != nil {
				t.Fatalf("Established once the answer came: %v", err)
			}
			c.Write([]byte("x"))
			if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
				t.Fatalf("the tunnel after Established: %v", err)
			}
		})
	}
}
