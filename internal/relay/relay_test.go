package relay

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/porta443/porta/internal/copybuf"
	"github.com/porta443/porta/internal/relay/relaytest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	for _, c := range []net.Conn{a, b} {
		c.SetDeadline(time.Now().Add(20 * time.Second))
	}
	return a.(*net.TCPConn), b.(*net.TCPConn)
}

// relayed sets up client ⇄ [relay] ⇄ target and returns the outer ends and
// Run's result.
func relayed(t *testing.T, ctx context.Context) (client, target *net.TCPConn, done chan error) {
	client, inner1 := tcpPair(t)
	inner2, target := tcpPair(t)
	done = make(chan error, 1)
	var r Relay
	go func() { done <- r.Run(ctx, inner1, inner2) }()
	return client, target, done
}

func TestRunHalfCloseBothWays(t *testing.T) {
	client, target, done := relayed(t, context.Background())
	client.Write([]byte("request"))
	client.CloseWrite()
	got, err := io.ReadAll(target)
	if err != nil || string(got) != "request" {
		t.Fatalf("target read %q, %v", got, err)
	}
	target.Write([]byte("response"))
	target.CloseWrite()
	got, err = io.ReadAll(client)
	if err != nil || string(got) != "response" {
		t.Fatalf("client read %q, %v", got, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestRunResetEndsBoth(t *testing.T) {
	client, target, done := relayed(t, context.Background())
	target.SetLinger(0)
	target.Close() // a reset, not an EOF
	if _, err := io.ReadAll(client); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client read: %v, want a reset", err)
	}
	if err := <-done; err == nil {
		t.Fatal("Run reported no error for a reset")
	}
}

func TestRunContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	client, _, done := relayed(t, ctx)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	if _, err := client.Read(make([]byte, 1)); err == nil {
		t.Fatal("client side left open")
	}
}

func TestGroupAddAfterClose(t *testing.T) {
	var g Group
	a, _ := tcpPair(t)
	g.Close()
	if _, _, ok := g.Add(context.Background(), a); ok {
		t.Fatal("Add after Close succeeded")
	}
	if _, err := a.Write([]byte("x")); err == nil {
		t.Fatal("refused connection left open")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := g.Serve(context.Background(), ln, func(context.Context, net.Conn) {}); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve after Close: %v", err)
	}
}

func TestGroupShutdownWaits(t *testing.T) {
	var g Group
	a, _ := tcpPair(t)
	ctx, done, ok := g.Add(context.Background(), a)
	if !ok {
		t.Fatal("Add refused")
	}
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		<-ctx.Done() // like a relay: ends when the group closes it
		done()
	}()
	sctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := g.Shutdown(sctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case <-finished:
	default:
		t.Fatal("Shutdown returned before the connection's goroutine ended")
	}
}

type failingListener struct{ net.Listener }

func (failingListener) Accept() (net.Conn, error) { return nil, errors.New("listener broke") }

func TestGroupServeListenerError(t *testing.T) {
	var g Group
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = g.Serve(context.Background(), failingListener{ln}, func(context.Context, net.Conn) {})
	if err == nil || errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
}

// scriptedConn reads as its script says (relaytest.Script) and records
// the size of each write.
type scriptedConn struct {
	net.Conn // only Read and Write are used
	relaytest.Script
	writes []int
}

func (c *scriptedConn) Read(p []byte) (int, error) { return c.Script.Read(p) }

func (c *scriptedConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, len(p))
	return len(p), nil
}

// pump copies through copybuf's growing buffer: a bulk transfer moves to
// the large buffer after one full read, and back once reads come in small.
func TestPumpBufferFollowsTheData(t *testing.T) {
	var r Relay
	src := &scriptedConn{Script: relaytest.Script{-1, -1, -1, -1, 100, 100, -1}}
	dst := &scriptedConn{}
	if err := r.pump(dst, src); err != nil {
		t.Fatal(err)
	}
	want := []int{copybuf.Small, copybuf.Large, copybuf.Large, copybuf.Large, 100, 100, copybuf.Small}
	if !slices.Equal(dst.writes, want) {
		t.Fatalf("writes %v, want %v", dst.writes, want)
	}
}
