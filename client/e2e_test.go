package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/porta443/porta/client"
	"github.com/porta443/porta/internal/relay/relaytest"
	"github.com/porta443/porta/internal/selfsigned"
	"github.com/porta443/porta/internal/testenv"
	"github.com/porta443/porta/server"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serverName is the server's host name in the bootstrap tests.
const serverName = "porta-server.test"

// bigName has more addresses than fit in a 512-byte UDP answer.
const bigName = "big.example.test"

// upstreamNames are what the server's loopback upstream knows.
func upstreamNames() map[string][]string {
	big := make([]string, 60)
	for i := range big {
		big[i] = fmt.Sprintf("192.0.2.%d", i+1)
	}
	return map[string][]string{
		"www.example.test":   {"192.0.2.80", "2001:db8::80"},
		"files.example.test": {"127.0.0.1"},
		serverName:           {"127.0.0.1"},
		bigName:              big,
	}
}

// stack is a porta server and a porta client on loopback, wired the way a
// user wires them.
type stack struct {
	t          *testing.T
	server     *server.Server
	serverAddr string
	serverDone chan error
	cert       *testenv.Cert
	upstream   *testenv.Upstream
	client     *client.Client
	clientDone chan error
	dnsAddr    string
	socksAddr  string
	httpAddr   string
	metrics    string // the client's --metrics

	serverConfig server.Config // what the server runs with besides the fields startServer sets
}

// startServer runs a server with user alice on addr (127.0.0.1:0 for any
// port).
func (s *stack) startServer(addr string) {
	t := s.t
	cfg := s.serverConfig
	cfg.CertFile, cfg.KeyFile = s.cert.CertFile, s.cert.KeyFile
	cfg.Upstreams = []string{s.upstream.URL()}
	cfg.Users = []string{"alice:alice-token"}
	cfg.AllowPrivate = true
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := server.Listen(addr, "")
	for tries := 0; err != nil && tries < 50; tries++ { // the old socket may linger a moment
		time.Sleep(100 * time.Millisecond)
		ls, err = server.Listen(addr, "")
	}
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	s.server, s.serverAddr, s.serverDone = srv, ls.TCP.Addr().String(), make(chan error, 1)
	go func() { s.serverDone <- srv.Serve(context.Background(), ls) }()
}

func (s *stack) stopServer() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.server.Shutdown(ctx)
	<-s.serverDone
}

func newStack(t *testing.T, transport string, records ...string) *stack {
	t.Helper()
	recs, err := client.ParseRecords(records)
	if err != nil {
		t.Fatal(err)
	}
	return newStackWith(t, func(s *stack, cfg *client.Config) {
		setTransport(cfg, transport)
		cfg.Records = recs
	})
}

// newStackWith starts a server, and a client whose config configure may
// change (its listeners are open by then).
func newStackWith(t *testing.T, configure func(*stack, *client.Config)) *stack {
	t.Helper()
	return startStack(&stack{t: t, cert: testenv.NewCert(t)}, configure)
}

// startStack starts s, whose t and cert are set (and its serverConfig if
// need be), as newStackWith does.
func startStack(s *stack, configure func(*stack, *client.Config)) *stack {
	t := s.t
	t.Helper()
	s.upstream = testenv.NewUpstream(t, upstreamNames())
	s.startServer("127.0.0.1:0")
	t.Cleanup(s.stopServer)

	ls, err := client.Listen("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if ls.Metrics, err = client.ListenMetrics("127.0.0.1:0"); err != nil {
		ls.Close()
		t.Fatal(err)
	}
	s.dnsAddr, s.socksAddr, s.httpAddr = ls.DNSUDP.LocalAddr().String(), ls.SOCKS.Addr().String(), ls.HTTPProxy.Addr().String()
	s.metrics = ls.Metrics.Addr().String()
	cfg := client.Config{
		Servers: []string{"https://alice:alice-token@" + s.serverAddr},
		RootCAs: s.cert.Pool,
	}
	configure(s, &cfg)
	cl, err := client.New(cfg)
	if err != nil {
		ls.Close()
		t.Fatal(err)
	}
	s.client, s.clientDone = cl, make(chan error, 1)
	go func() { s.clientDone <- cl.Serve(context.Background(), ls) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		cl.Shutdown(ctx)
		if err := <-s.clientDone; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("client Serve: %v", err)
		}
	})
	return s
}

// dig asks the client's local resolver.
func (s *stack) dig(args ...string) (string, error) {
	dig := testenv.LookPath(s.t, "dig", "bind9-dnsutils")
	host, port, _ := net.SplitHostPort(s.dnsAddr)
	out, err := exec.Command(dig, append([]string{"@" + host, "-p", port, "+tries=1", "+time=5"}, args...)...).CombinedOutput()
	return string(out), err
}

// eachTransport runs f once per transport: h2, h2std (HTTP/2 on
// net/http's client, Config.StdHTTP2) and h3.
func eachTransport(t *testing.T, f func(t *testing.T, transport string)) {
	for _, tr := range []string{"h2", "h2std", "h3"} {
		t.Run(tr, func(t *testing.T) { f(t, tr) })
	}
}

// setTransport sets cfg's transport for one of eachTransport's.
func setTransport(cfg *client.Config, transport string) {
	cfg.Transport, cfg.StdHTTP2 = protoOf(transport), transport == "h2std"
}

// protoOf is the protocol of one of eachTransport's: h2std is h2.
func protoOf(transport string) string { return strings.TrimSuffix(transport, "std") }

func TestLocalResolver(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		s := newStack(t, transport, "porta.test=10.1.2.3", "porta.test=fd00::3")
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"+short", "www.example.test", "A"}, "192.0.2.80"},
			{[]string{"+short", "+tcp", "www.example.test", "AAAA"}, "2001:db8::80"},
			{[]string{"+short", "porta.test", "A"}, "10.1.2.3"},
			{[]string{"+short", "+tcp", "PORTA.test", "AAAA"}, "fd00::3"},
		} {
			out, err := s.dig(tc.args...)
			if err != nil || strings.TrimSpace(out) != tc.want {
				t.Errorf("dig %v: %q %v, want %s", tc.args, out, err, tc.want)
			}
		}
		out, _ := s.dig("nothere.example.test")
		if !strings.Contains(out, "status: NXDOMAIN") {
			t.Errorf("NXDOMAIN expected:\n%s", out)
		}
		// The local record never went out.
		before := s.upstream.Queries.Load()
		s.dig("+short", "porta.test", "A")
		if s.upstream.Queries.Load() != before {
			t.Error("a local record was asked upstream")
		}
	})
}

// TestLocalResolverTruncatesForUDP: an answer too big for the asker's UDP
// size is truncated, and dig's retry over TCP gets it whole.
func TestLocalResolverTruncatesForUDP(t *testing.T) {
	s := newStack(t, "h2")
	out, err := s.dig("+noedns", "+ignore", bigName)
	if err != nil || !strings.Contains(out, " tc ") && !strings.Contains(out, "flags: qr tc") {
		t.Fatalf("want a truncated UDP answer:\n%s %v", out, err)
	}
	out, err = s.dig("+noedns", "+short", bigName) // dig retries over TCP
	if err != nil || len(strings.Fields(out)) != 60 {
		t.Fatalf("want 60 addresses over TCP, got %d:\n%s", len(strings.Fields(out)), out)
	}
	// On the wire, an asker that takes 1232 bytes gets no more.
	for _, size := range []uint16{512, 1232} {
		m := new(dns.Msg)
		m.SetQuestion(bigName+".", dns.TypeA)
		m.SetEdns0(size, false)
		q, _ := m.Pack()
		conn, err := net.Dial("udp", s.dnsAddr)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		conn.Write(q)
		buf := make([]byte, 65535)
		n, err := conn.Read(buf)
		conn.Close()
		r := new(dns.Msg)
		// 60 compressed A records take 1005 bytes: 512 must truncate, 1232 must not.
		if err != nil || n > int(size) || r.Unpack(buf[:n]) != nil || r.Truncated != (size == 512) || len(r.Answer) == 0 {
			t.Fatalf("EDNS %d: %d bytes, %v, TC %v, %d answers", size, n, err, r.Truncated, len(r.Answer))
		}
	}
}

func TestProxiesCarryFiles(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		s := newStack(t, transport)
		target, sum := relaytest.FileServer(t, 30<<20)
		_, port, _ := net.SplitHostPort(target)
		byName := "http://files.example.test:" + port + "/file" // resolved by the server
		byIP := "http://" + target + "/file"
		for _, args := range [][]string{
			{"--socks5-hostname", s.socksAddr, byName},
			{"--socks5", s.socksAddr, byIP},
			{"-x", "http://" + s.httpAddr, byName},
			{"-p", "-x", "http://" + s.httpAddr, byName},
		} {
			got, _, err := relaytest.Curl(t, args...)
			if err != nil || got != sum {
				t.Errorf("curl %v: %v (digest match %v)", args, err, got == sum)
			}
		}
		_, pac, err := relaytest.Curl(t, "http://"+s.httpAddr+"/proxy.pac")
		if err != nil || !strings.Contains(string(pac), "FindProxyForURL") || !strings.Contains(string(pac), s.httpAddr) {
			t.Errorf("PAC: %q %v", pac, err)
		}
	})
}

// TestCurlFetchesTheSameFileTwentyTimes: curl through --socks5-hostname
// fetches a 30 MB file 20 times in a row over each transport, and every
// digest is the file's.
func TestCurlFetchesTheSameFileTwentyTimes(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		s := newStack(t, transport)
		target, sum := relaytest.FileServer(t, 30<<20)
		_, port, _ := net.SplitHostPort(target)
		for i := range 20 {
			got, _, err := relaytest.Curl(t, "--socks5-hostname", s.socksAddr, "http://files.example.test:"+port+"/file")
			if err != nil || got != sum {
				t.Fatalf("fetch %d: %v (digest match %v)", i+1, err, got == sum)
			}
		}
	})
}

// TestServerRestart: while the server is down, DNS answers come within a
// few seconds (stale or SERVFAIL), and tunnels work again soon after it
// returns on the same port.
func TestServerRestart(t *testing.T) {
	s := newStack(t, "h2")
	target, sum := relaytest.FileServer(t, 1<<20)
	if out, err := s.dig("+short", "www.example.test"); err != nil || strings.TrimSpace(out) != "192.0.2.80" {
		t.Fatalf("before: %q %v", out, err)
	}
	s.stopServer()

	for _, name := range []string{"www.example.test", "fresh.example.test"} {
		begun := time.Now()
		out, err := s.dig(name)
		if err != nil {
			t.Fatalf("dig %s while the server is down: %v\n%s", name, err, out)
		}
		if d := time.Since(begun); d > 4*time.Second {
			t.Errorf("dig %s took %v while the server was down", name, d)
		}
		if name == "www.example.test" && !strings.Contains(out, "192.0.2.80") {
			t.Errorf("the cached answer was not served:\n%s", out)
		}
		if name == "fresh.example.test" && !strings.Contains(out, "SERVFAIL") {
			t.Errorf("want SERVFAIL for an unknown name while down:\n%s", out)
		}
	}

	s.startServer(s.serverAddr)
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, _, err := relaytest.Curl(t, "--max-time", "5", "--socks5-hostname", s.socksAddr, "http://"+target+"/file")
		if err == nil && got == sum {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tunnel still broken 15s after the server came back: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// byName points the client at the server by a host name, trusted by its
// key's pin, with bootstrap resolvers at addrs.
func byName(s *stack, cfg *client.Config, bootstrap ...string) {
	_, port, _ := net.SplitHostPort(s.serverAddr)
	cfg.Servers = []string{"https://alice:alice-token@" + serverName + ":" + port}
	cfg.RootCAs, cfg.Pin, cfg.Bootstrap = nil, selfsigned.Pin(s.cert.TLS.Leaf), bootstrap
}

// TestServerNameIsBootstrapped: the server's own name is resolved through
// the bootstrap resolvers, not the tunnel, and the local resolver answers
// it even while the server is down.
func TestServerNameIsBootstrapped(t *testing.T) {
	s := newStackWith(t, func(s *stack, cfg *client.Config) { byName(s, cfg, s.upstream.Addr) })
	if out, err := s.dig("+short", "www.example.test"); err != nil || strings.TrimSpace(out) != "192.0.2.80" {
		t.Fatalf("through the tunnel: %q %v", out, err)
	}
	s.stopServer()
	if out, err := s.dig("+short", serverName); err != nil || strings.TrimSpace(out) != "127.0.0.1" {
		t.Fatalf("the server's name while it is down: %q %v", out, err)
	}
	s.startServer(s.serverAddr)
}

// TestBootstrapLoopIsBroken: when the resolver the client would ask for the
// server's name is the client itself, queries still end quickly (SERVFAIL)
// instead of chasing each other: its addresses, and its HTTPS record,
// which --ech auto looks up first.
func TestBootstrapLoopIsBroken(t *testing.T) {
	s := newStackWith(t, func(s *stack, cfg *client.Config) { byName(s, cfg, s.dnsAddr) })
	for _, name := range []string{"www.example.test", serverName} {
		begun := time.Now()
		out, err := s.dig(name)
		if err != nil || !strings.Contains(out, "SERVFAIL") {
			t.Errorf("dig %s: want SERVFAIL, got %v\n%s", name, err, out)
		}
		// Chasing each other, the queries would end only when the 2.5 s
		// DNS timeout or the 2 s bootstrap dial timeout cut them off.
		if d := time.Since(begun); d > 1500*time.Millisecond {
			t.Errorf("dig %s took %v: the loop was not broken", name, d)
		}
	}
}
