package socks5

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/porta443/porta/internal/relay/relaytest"
	"github.com/porta443/porta/internal/testenv"
)

// connectTo opens a SOCKS5 CONNECT to a loopback address and reads the
// reply.
func connectTo(t *testing.T, proxy, target string) *net.TCPConn {
	t.Helper()
	c := dialSOCKS(t, proxy)
	ap := netip.MustParseAddrPort(target)
	c.Write(connectMsg(atypIPv4, ap.Addr().AsSlice(), ap.Port()))
	got := make([]byte, 2+10)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "reply", got, cat([]byte{5, 0}, success))
	return c
}

// TestBadClientsAffectNobody: while one client's transfer is under way and
// another client has stopped reading, garbage, truncated and idle
// connections are closed, and both transfers still complete.
func TestBadClientsAffectNobody(t *testing.T) {
	body, sum := payload(t, 8<<20)
	src := sourceTarget(t, body)
	proxy := startServer(t, Config{Dial: dialDirect, HandshakeTimeout: 300 * time.Millisecond})

	busy := connectTo(t, proxy, src)
	first := make([]byte, len(body)/2) // half now, the rest after the bad clients
	if _, err := io.ReadFull(busy, first); err != nil {
		t.Fatal(err)
	}
	stalled := connectTo(t, proxy, src) // reads nothing until the end

	bad := [][]byte{
		nil,                          // idle: the handshake deadline closes it
		{5, 1},                       // truncated greeting, left open
		{5, 1, 0, 5, 1, 0, 3, 200},   // truncated domain, left open
		bytes.Repeat([]byte{5}, 1e6), // a flood
		[]byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), // TLS on the SOCKS port
	}
	var wg sync.WaitGroup
	for _, b := range bad {
		c := dialSOCKS(t, proxy)
		wg.Go(func() {
			c.Write(b) // may fail once the server closed: that is fine
		})
		readAll(t, c) // returns only when the server closed it
	}
	wg.Wait()

	relaytest.ExpectSum(t, io.MultiReader(bytes.NewReader(first), busy), sum, "busy transfer")
	relaytest.ExpectSum(t, stalled, sum, "stalled transfer")
}

// TestHalfClose: each side's end of sending reaches the other while the
// other direction goes on.
func TestHalfClose(t *testing.T) {
	t.Run("client first", func(t *testing.T) {
		// The target answers with the digest of everything it read, after EOF.
		target := serveTCP(t, func(c net.Conn) {
			h := sha256.New()
			io.Copy(h, c)
			c.Write(h.Sum(nil))
		})
		proxy := startServer(t, Config{Dial: dialDirect})
		c := connectTo(t, proxy, target)
		body, sum := payload(t, 1<<20)
		c.Write(body)
		c.CloseWrite()
		mustEqual(t, "digest after half-close", readAll(t, c), sum[:])
	})
	t.Run("target first", func(t *testing.T) {
		got := make(chan []byte, 1)
		target := serveTCP(t, func(c net.Conn) {
			c.Write([]byte("banner"))
			c.(*net.TCPConn).CloseWrite()
			b, _ := io.ReadAll(c)
			got <- b
		})
		proxy := startServer(t, Config{Dial: dialDirect})
		c := connectTo(t, proxy, target)
		if _, err := io.ReadAll(c); err != nil { // EOF while our side is open
			t.Fatal(err)
		}
		c.Write([]byte("still talking"))
		c.CloseWrite()
		select {
		case b := <-got:
			mustEqual(t, "target read after its half-close", b, []byte("still talking"))
		case <-time.After(20 * time.Second):
			t.Fatal("target never saw EOF")
		}
	})
}

// TestShutdown: Shutdown waits for a relay until its context ends, then
// closes it; Serve returns ErrServerClosed and nothing is left running.
func TestShutdown(t *testing.T) {
	echo := echoTarget(t)
	s, err := New(Config{Dial: dialDirect})
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	served := make(chan error, 1)
	go func() { served <- s.Serve(context.Background(), ln) }()
	c := connectTo(t, ln.Addr().String(), echo)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a live relay: %v", err)
	}
	readAll(t, c)
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("listener still accepts")
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

// TestServeContext: Serve's ctx is only its connections' parent, as
// http.Server's BaseContext: once it is canceled, a new connection's Dial
// gets a canceled context (and the client a failure reply), but the server
// serves on; Shutdown ends Serve, which returns http.ErrServerClosed.
func TestServeContext(t *testing.T) {
	echo := echoTarget(t)
	s, err := New(Config{Dial: dialDirect})
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	cancel()

	c := dialSOCKS(t, ln.Addr().String())
	ap := netip.MustParseAddrPort(echo)
	c.Write(connectMsg(atypIPv4, ap.Addr().AsSlice(), ap.Port()))
	got := make([]byte, 2+len(success))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("no reply after ctx was canceled: %v", err)
	}
	if got[3] == 0 {
		t.Fatal("CONNECT succeeded with a canceled context")
	}
	testenv.ServeOutlivedItsContext(t, served, s.Shutdown)
}
