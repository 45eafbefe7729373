package tunnel

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porta443/porta/internal/h2"
	"github.com/porta443/porta/internal/relay/relaytest"
	"github.com/porta443/porta/internal/sameport"
	"github.com/porta443/porta/internal/testenv"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// net/http's HTTP/2 server (mode h2stdsrv) takes extended CONNECT,
	// for CONNECT-UDP, only with this in the environment.
	testenv.RunWithGODEBUG("http2xconnect=1")
	goleak.VerifyTestMain(m)
}

// modes are the transports every tunnel test runs over: h1 is a CONNECT
// over HTTP/1.1 by hand, the others are the Dialer's; h2 is internal/h2's
// client and server, h2std net/http's client (DialerConfig.StdHTTP2)
// against internal/h2's server, h2stdsrv internal/h2's client against
// net/http's server ("porta server --std-http2").
var modes = []string{"h1", "h2", "h2std", "h2stdsrv", "h3"}

// dialerModes are the modes the Dialer runs in, and h2Modes those of its
// two HTTP/2 clients.
var (
	dialerModes = modes[1:]
	h2Modes     = []string{"h2", "h2std"}
)

// withMode is cfg with the Dialer's transport for mode.
func withMode(mode string, cfg DialerConfig) DialerConfig {
	cfg.Transport, cfg.StdHTTP2 = transport(mode), mode == "h2std"
	return cfg
}

// run runs f once per transport, like net/http's run(t, f).
func run(t *testing.T, f func(t *testing.T, mode string)) {
	t.Helper()
	runOver(t, modes, f)
}

// runOver runs f once per mode of ms.
func runOver(t *testing.T, ms []string, f func(t *testing.T, mode string)) {
	t.Helper()
	for _, mode := range ms {
		t.Run(mode, func(t *testing.T) { f(t, mode) })
	}
}

// stdServerMode reports whether t runs in mode h2stdsrv, by its name, so
// that every test server started under run serves HTTP/2 with net/http's
// server there without each test passing its mode along.
func stdServerMode(t testing.TB) bool {
	return slices.Contains(strings.Split(t.Name(), "/"), "h2stdsrv")
}

// transport is the Dialer's Transport for mode.
func transport(mode string) string {
	if mode == "h2std" || mode == "h2stdsrv" {
		return "h2"
	}
	return mode
}

// shutdownLater shuts hs down gracefully (in 20 s at most) on a goroutine
// of its own, and sends what Shutdown returned.
func shutdownLater(hs *http.Server) <-chan error {
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shut <- hs.Shutdown(ctx)
	}()
	return shut
}

const (
	testUser  = "alice"
	testToken = "s3cret-token"
)

func testUsers(t testing.TB, entries ...string) *Users {
	t.Helper()
	if len(entries) == 0 {
		entries = []string{testUser + ":" + testToken}
	}
	u, err := NewUsers(UsersConfig{Users: entries})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// testServer serves one handler over TLS (HTTP/1.1 and HTTP/2) and QUIC
// (HTTP/3) on the same 127.0.0.1 port, with the settings porta's server
// uses.
type testServer struct {
	addr string
	cert *testenv.Cert
	h    *Handler // nil when the server runs a bare website
	tcp  net.Listener
	udp  net.PacketConn
}

// newTestServer serves handler (a *Handler, or a bare website).
func newTestServer(t testing.TB, handler http.Handler) *testServer {
	t.Helper()
	return newTestServerOpts(t, handler, serverOpts{})
}

// serverOpts adjust a test server: wrapped listeners (e.g. to count what
// arrives), a changed http.Server.
type serverOpts struct {
	wrapTCP   func(net.Listener) net.Listener
	wrapUDP   func(net.PacketConn) net.PacketConn
	configure func(*http.Server)
	quic      func(*quic.Config)
	cert      *testenv.Cert                 // nil: testenv.NewCert
	ech       []tls.EncryptedClientHelloKey // nil: no ECH, but in the probe variants (probeECH)
}

func newTestServerOpts(t testing.TB, handler http.Handler, o serverOpts) *testServer {
	t.Helper()
	wrapTCP, wrapUDP := o.wrapTCP, o.wrapUDP
	cert := o.cert
	if cert == nil {
		cert = testenv.NewCert(t)
	}
	tcp, udp, err := sameport.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if wrapTCP != nil {
		tcp = wrapTCP(tcp)
	}
	if wrapUDP != nil {
		udp = wrapUDP(udp)
	}
	ts := &testServer{addr: tcp.Addr().String(), cert: cert, tcp: tcp, udp: udp}
	ts.h, _ = handler.(*Handler)
	tlsConf := o.withECH(t, &tls.Config{Certificates: []tls.Certificate{cert.TLS}, NextProtos: []string{"h2", "http/1.1"}})
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	hs := &http.Server{
		Handler:   handler,
		TLSConfig: tlsConf,
		Protocols: &protos,
		HTTP2:     ServerHTTP2Config(),
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	if !stdServerMode(t) {
		hs.HTTP2 = nil // net/http's defaults, as porta server offers them: tunnels tune their own
	}
	if o.configure != nil {
		o.configure(hs)
	}
	if !stdServerMode(t) {
		if err := (&h2.Server{EnableConnectProtocol: true}).ConfigureServer(hs); err != nil {
			t.Fatal(err)
		}
	}
	quicConf := ServerQUICConfig()
	if o.quic != nil {
		o.quic(quicConf)
	}
	h3s := &http3.Server{
		Handler:         handler,
		TLSConfig:       http3.ConfigureTLSConfig(o.withECH(t, &tls.Config{Certificates: []tls.Certificate{cert.TLS}})),
		QUICConfig:      quicConf,
		EnableDatagrams: true,
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); hs.ServeTLS(tcp, "", "") }()
	go func() { defer wg.Done(); h3s.Serve(udp) }()
	t.Cleanup(func() {
		if ts.h != nil {
			ts.h.Close()
		}
		hs.Close()
		h3s.Close()
		udp.Close()
		wg.Wait()
	})
	return ts
}

// newTunnelServer runs a Handler in front of a small website.
func newTunnelServer(t testing.TB, cfg HandlerConfig) *testServer {
	t.Helper()
	return newTunnelServerOpts(t, cfg, serverOpts{})
}

// newTunnelServerOpts is newTunnelServer with the test server's options.
func newTunnelServerOpts(t testing.TB, cfg HandlerConfig, o serverOpts) *testServer {
	t.Helper()
	if cfg.Next == nil {
		cfg.Next = newWebsite(t)
	}
	if cfg.Users == nil {
		cfg.Users = testUsers(t)
	}
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return newTestServerOpts(t, h, o)
}

func basicAuth(user, token string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+token))
}

// newDialer is a Dialer for ts over mode (one of dialerModes).
func newDialer(t testing.TB, ts *testServer, mode, user, token string) *Dialer {
	t.Helper()
	d, err := NewDialer(withMode(mode, DialerConfig{
		Servers: []string{serverURLFor(user, token, ts.addr)},
		RootCAs: ts.cert.Pool,
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// halfCloser is a connection that can half-close.
type halfCloser interface {
	net.Conn
	CloseWrite() error
}

// dialVia opens a tunneled connection to target: a raw HTTP/1.1 CONNECT
// over TLS for h1, a Dialer stream for the others.
func dialVia(t testing.TB, ts *testServer, mode, target string) halfCloser {
	t.Helper()
	c, err := tryDialVia(t, ts, mode, target, testUser, testToken)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func tryDialVia(t testing.TB, ts *testServer, mode, target, user, token string) (halfCloser, error) {
	if mode == "h1" {
		return connectH1(ts, target, basicAuth(user, token))
	}
	d := newDialer(t, ts, mode, user, token)
	c, err := d.DialContext(context.Background(), "tcp", target)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c.(halfCloser), nil
}

// h1Conn is a tunnel made by an HTTP/1.1 CONNECT.
type h1Conn struct {
	*tls.Conn
	br *bufio.Reader
}

func (c *h1Conn) Read(p []byte) (int, error) { return c.br.Read(p) }

// connectH1 sends a CONNECT over a new TLS connection and returns the
// tunnel, or a *RefusedError for a non-2xx answer.
func connectH1(ts *testServer, target, auth string) (*h1Conn, error) {
	tc, err := tls.Dial("tcp", ts.addr, ts.cert.ClientTLS("http/1.1"))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(tc, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: %s\r\n\r\n", target, target, auth)
	br := bufio.NewReader(tc)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		tc.Close()
		return nil, err
	}
	if err := refusal(resp.StatusCode, resp.Header); err != nil {
		tc.Close()
		return nil, err
	}
	return &h1Conn{Conn: tc, br: br}, nil
}

// serveTarget runs a TCP server on 127.0.0.1 calling handle for each
// connection; it waits for the handlers at cleanup.
func serveTarget(t testing.TB, handle func(c *net.TCPConn)) string {
	return relaytest.ServeTCP(t, func(c net.Conn) { handle(c.(*net.TCPConn)) })
}

// echoTarget echoes until EOF, then closes.
var echoTarget = relaytest.EchoTarget

// mapResolver resolves names from a map and fails for the rest; it never
// touches the network.
type mapResolver map[string][]netip.Addr

var errNoSuchHost = errors.New("no such host")

func (m mapResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if as, ok := m[host]; ok {
		return as, nil
	}
	return nil, &net.DNSError{Err: errNoSuchHost.Error(), Name: host, IsNotFound: true}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

func itoa(n int) string { return strconv.Itoa(n) }

func timeNowPlus(d time.Duration) time.Time { return time.Now().Add(d) }

// pinOf is ts's key pin in the sha256//BASE64 form.
func pinOf(ts *testServer) string {
	sum := sha256.Sum256(ts.cert.TLS.Leaf.RawSubjectPublicKeyInfo)
	return "sha256//" + base64.StdEncoding.EncodeToString(sum[:])
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

// serverURL is the test user's server URL for a server at addr.
func serverURL(addr string) string { return serverURLFor(testUser, testToken, addr) }

// serverURLFor is a server URL for user with token at addr.
func serverURLFor(user, token, addr string) string {
	return "https://" + user + ":" + token + "@" + addr
}

// pingTunnel dials target, an echo, through d and checks that "ping"
// comes back; the tunnel stays open until the test ends.
func pingTunnel(t *testing.T, d *Dialer, target string) net.Conn {
	t.Helper()
	c, err := d.DialContext(context.Background(), "tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatalf("tunnel to %s: write: %v", target, err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("tunnel to %s: echo %q, %v", target, got, err)
	}
	return c
}
