package httpproxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porta443/porta/internal/relay/relaytest"
	"github.com/porta443/porta/internal/testenv"
)

// TestBadClientsAffectNobody: while one CONNECT transfer is under way and
// another client has stopped reading, garbage, truncated, oversized and
// idle requests are answered or closed, and both transfers complete.
func TestBadClientsAffectNobody(t *testing.T) {
	body, sum := relaytest.Payload(t, 8<<20)
	src := relaytest.SourceTarget(t, body)
	proxy := startServer(t, Config{Dial: relaytest.DialDirect, ReadHeaderTimeout: 300 * time.Millisecond, MaxHeaderBytes: 4096})

	open := func() io.Reader {
		c := dialProxy(t, proxy)
		resp, br := connect(t, c, src, nil)
		if resp.StatusCode != 200 {
			t.Fatal(resp.Status)
		}
		return br
	}
	busy := open()
	first := make([]byte, len(body)/2) // half now, the rest after the bad clients
	if _, err := io.ReadFull(busy, first); err != nil {
		t.Fatal(err)
	}
	stalled := open()

	bad := [][]byte{
		nil, // idle: the header timeout closes it
		[]byte("CONNECT x.test:443 HTTP/1.1\r\nHost"), // truncated, left open
		[]byte("\x05\x01\x00\x05\x01\x00\x03"),        // SOCKS on the HTTP port
		[]byte("GET http://x.test/ HTTP/1.1\r\nHost: x.test\r\nX-Big: " + strings.Repeat("a", 1<<20) + "\r\n\r\n"),
		bytes.Repeat([]byte{0}, 1<<20),
	}
	var wg sync.WaitGroup
	for _, b := range bad {
		c := dialProxy(t, proxy)
		wg.Go(func() { c.Write(b) }) // may fail once the proxy closed
		out := relaytest.ReadAll(t, c)
		if len(out) > 0 && !bytes.HasPrefix(out, []byte("HTTP/1.1 4")) {
			t.Errorf("answer to %.20q: %.40q", b, out)
		}
	}
	wg.Wait()

	relaytest.ExpectSum(t, io.MultiReader(bytes.NewReader(first), busy), sum, "busy transfer")
	relaytest.ExpectSum(t, stalled, sum, "stalled transfer")
}

// TestShutdown: Shutdown waits for a CONNECT tunnel and a forwarded
// download until its context ends, then closes both; Serve returns
// ErrServerClosed and every goroutine is gone.
func TestShutdown(t *testing.T) {
	echo := relaytest.EchoTarget(t)
	origin, _ := relaytest.FileServer(t, 64<<20)
	s, err := New(Config{Dial: relaytest.DialDirect})
	if err != nil {
		t.Fatal(err)
	}
	ln := relaytest.Listen(t)
	served := make(chan error, 1)
	go func() { served <- s.Serve(context.Background(), ln) }()

	tunnel := dialProxy(t, ln.Addr().String())
	if resp, _ := connect(t, tunnel, echo, nil); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	download := dialProxy(t, ln.Addr().String())
	io.WriteString(download, "GET http://"+origin+"/file HTTP/1.1\r\nHost: "+origin+"\r\n\r\n")
	if _, err := io.ReadFull(download, make([]byte, 1<<10)); err != nil { // under way, not read further
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a live tunnel: %v", err)
	}
	relaytest.ReadAll(t, tunnel)
	relaytest.ReadAll(t, download)
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("listener still accepts")
	}
}

// TestServeContext: Serve's ctx is only its requests' parent, as
// http.Server's BaseContext: once it is canceled, a new CONNECT's dial
// gets a canceled context (and the client an error status), but the proxy
// serves on; Shutdown ends Serve, which returns http.ErrServerClosed.
func TestServeContext(t *testing.T) {
	echo := relaytest.EchoTarget(t)
	s, err := New(Config{Dial: relaytest.DialDirect})
	if err != nil {
		t.Fatal(err)
	}
	ln := relaytest.Listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	cancel()

	c := dialProxy(t, ln.Addr().String())
	if resp, _ := connect(t, c, echo, nil); resp.StatusCode == 200 {
		t.Fatal("CONNECT succeeded with a canceled context")
	}
	testenv.ServeOutlivedItsContext(t, served, s.Shutdown)
}

func TestNewValidates(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{Dial: relaytest.DialDirect, PAC: "x", PACProxies: []string{"PROXY a:1"}},
		{Dial: relaytest.DialDirect, PACProxies: []string{`PROXY a:1"; alert(1); "`}},
		{Dial: relaytest.DialDirect, DialTimeout: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
