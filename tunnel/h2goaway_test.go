package tunnel

import (
	"bytes"
	"context"
	"crypto/x509"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

// A server that shuts down gracefully (GOAWAY) finishes the tunnels it
// has: the Dialer stops opening streams on that connection but does not
// cut the ones in flight, not even when a new dial finds the server gone.
func TestH2GoAwayLetsStreamsFinish(t *testing.T) {
	runOver(t, h2Modes, testH2GoAwayLetsStreamsFinish)
}

func testH2GoAwayLetsStreamsFinish(t *testing.T, mode string) {
	half := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{2}).Read(half)
	release := make(chan struct{})
	target := serveTarget(t, func(c *net.TCPConn) {
		defer c.Close()
		c.Write(half)
		<-release
		c.Write(half)
	})
	var hs *http.Server
	ts := newTunnelServerOpts(t, HandlerConfig{AllowPrivate: true}, serverOpts{configure: func(s *http.Server) { hs = s }})
	d := newDialer(t, ts, mode, testUser, testToken)
	c, err := d.DialContext(context.Background(), "tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make([]byte, 2<<20)
	if _, err := io.ReadFull(c, got[:1<<20]); err != nil {
		t.Fatal(err)
	}

	shut := shutdownLater(hs)
	waitFor(t, "the GOAWAY", 5*time.Second, func() bool { return d.Protocol() == "" })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The going-away connection takes no new stream and the closed
	// listener no new connection: a new tunnel must fail.
	if extra, err := d.DialContext(ctx, "tcp", target); err == nil {
		extra.Close()
		t.Error("a new tunnel was opened after the server went away")
	}

	close(release)
	if _, err := io.ReadFull(c, got[1<<20:]); err != nil {
		t.Fatalf("the stream in flight: %v", err)
	}
	if !bytes.Equal(got[:1<<20], half) || !bytes.Equal(got[1<<20:], half) {
		t.Fatal("the bytes differ")
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after the data: %d, %v; want EOF", n, err)
	}
	c.Close()
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// A connection the server closes for idleness (http.Server.IdleTimeout:
// GOAWAY, then close) is replaced on the next dial, which works: a laptop
// that sat idle for a while gets its next tunnel without an error.
func TestH2IdleConnectionReplaced(t *testing.T) {
	runOver(t, h2Modes, testH2IdleConnectionReplaced)
}

func testH2IdleConnectionReplaced(t *testing.T, mode string) {
	ts := newTunnelServerOpts(t, HandlerConfig{AllowPrivate: true}, serverOpts{configure: func(s *http.Server) { s.IdleTimeout = 200 * time.Millisecond }})
	d := newDialer(t, ts, mode, testUser, testToken)
	target := echoTarget(t)
	// echo returns the protocol of the connection while its tunnel is
	// open: after, the 200 ms idle timeout may close it at any moment.
	echo := func() string {
		t.Helper()
		c := pingTunnel(t, d, target)
		defer c.Close()
		return d.Protocol()
	}
	echo()
	waitFor(t, "the server to close the idle connection", 5*time.Second, func() bool { return d.Protocol() == "" })
	if p := echo(); p != "h2" {
		t.Fatalf("protocol %q after reconnecting", p)
	}
}

// A tunnel dialed on a connection that began to go away before its
// CONNECT was sent goes to a live connection instead, here on the next
// server (the first one's listener is gone), as net/http retries requests
// a server did not process (RFC 9113 §8.7). A request made after the
// GOAWAY goes to the live server too. (RoundTrip's own retry, for a
// GOAWAY that lands between choosing the connection and sending, is the
// same path as the tunnel's; this test cannot time that window.)
func TestH2NotProcessedGoesElsewhere(t *testing.T) {
	runOver(t, h2Modes, testH2NotProcessedGoesElsewhere)
}

func testH2NotProcessedGoesElsewhere(t *testing.T, mode string) {
	serve := func() (*testServer, **http.Server) {
		var hs *http.Server
		ts := newTunnelServerOpts(t, HandlerConfig{AllowPrivate: true}, serverOpts{configure: func(s *http.Server) { hs = s }})
		return ts, &hs
	}
	a, aSrv := serve()
	b, _ := serve()
	pool := x509.NewCertPool()
	for _, ts := range []*testServer{a, b} {
		pem, err := os.ReadFile(ts.cert.CertFile)
		if err != nil || !pool.AppendCertsFromPEM(pem) {
			t.Fatalf("certificate of %s: %v", ts.addr, err)
		}
	}
	d, err := NewDialer(withMode(mode, DialerConfig{
		Servers: []string{
			serverURL(a.addr),
			serverURL(b.addr),
		},
		RootCAs: pool,
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	target := echoTarget(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// A tunnel in flight keeps the first server's connection open while
	// it goes away; a second one is dialed but not yet sent.
	first, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if _, err := first.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(first, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	second, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+a.addr+"/", bytes.NewReader([]byte("body")))

	shut := make(chan error, 1)
	go func() { shut <- (*aSrv).Shutdown(ctx) }()
	waitFor(t, "the GOAWAY", 5*time.Second, func() bool { return d.Protocol() == "" })

	second.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := second.Write([]byte("ping")); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(second, got); err != nil || string(got) != "ping" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	if ra := second.RemoteAddr().String(); ra != target {
		t.Fatalf("remote address %s", ra)
	}
	if n := b.h.Active(); n != 1 {
		t.Fatalf("%d tunnels on the second server, want the second one", n)
	}
	wantWebsite(t, d, req)

	first.Close()
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
