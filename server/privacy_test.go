package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/porta443/porta/internal/relay/relaytest"
	"github.com/porta443/porta/internal/testenv"
	"github.com/porta443/porta/server"
	"github.com/porta443/porta/tunnel"
)

// TestLogsKeepNamesAndTargetsPrivate: at level info, the server's log
// shows none of the names asked of its DoH resolver, none of its tunnels'
// targets and no URL with a query string: for DoH hits and misses over
// h1, h2 and h3, upstreams that fail, tunnels that work, are refused or
// break off, and probes of the website.
func TestLogsKeepNamesAndTargetsPrivate(t *testing.T) {
	logs, log := testenv.NewLogs(slog.LevelInfo)
	logs.CaptureStandardLog(t)
	target := serveBytes(t, []byte("hello"))
	_, port, _ := net.SplitHostPort(target)
	breaking := breakingTarget(t)
	_, breakingPort, _ := net.SplitHostPort(breaking)
	closed := closedPort(t)
	private := testenv.Private{
		Names: []string{"privacy-hit.example.test", "privacy-nx.example.test", "files.example.test", "privacy-down.example.test", "privacy-gone.example.test"},
		Ports: []string{port, breakingPort, closed},
		Words: []string{"privacy-query"},
	}
	up := testenv.NewUpstream(t, map[string][]string{"privacy-hit.example.test": {"192.0.2.7"}, "files.example.test": {"127.0.0.1"}})
	users := []string{"alice:s3cret-token"}
	good := start(t, server.Config{Upstreams: []string{up.URL()}, Users: users, AllowPrivate: true, Logger: log}, false)
	strict := start(t, server.Config{Upstreams: []string{up.URL()}, Users: users, Logger: log}, false)
	// Upstreams that take the connection and close it at once.
	dead := breakingTarget(t)
	down := start(t, server.Config{Upstreams: []string{"https://" + dead + "/dns-query", "tcp://" + dead}, Users: users, AllowPrivate: true, Logger: log}, false)

	// DoH, by GET and POST, on every protocol: misses, hits, NXDOMAIN,
	// and failing upstreams.
	for proto, c := range good.clients(t) {
		for _, name := range []string{"privacy-hit.example.test", "privacy-hit.example.test", "privacy-nx.example.test"} {
			for _, method := range []string{"GET", "POST"} {
				if rcode := askDoH(t, c, good, method, name); rcode == dns.RcodeServerFailure {
					t.Errorf("%s %s %s: SERVFAIL", proto, method, name)
				}
			}
		}
		get(t, c, newRequest(t, "GET", good.url("/?privacy-query=site"))) // the website
	}
	for _, method := range []string{"GET", "POST"} {
		if rcode := askDoH(t, down.clients(t)["h2"], down, method, "privacy-down.example.test"); rcode != dns.RcodeServerFailure {
			t.Errorf("%s with the upstreams failing: rcode %d, want SERVFAIL", method, rcode)
		}
	}

	// Tunnels over h2 and h3, as porta's client opens them: one that
	// works, one to a closed port, one to a name that does not exist.
	for _, transport := range []string{"h2", "h3"} {
		d, err := tunnel.NewDialer(tunnel.DialerConfig{Servers: []string{"https://" + users[0] + "@" + good.addr}, RootCAs: good.cert.Pool, Transport: transport})
		if err != nil {
			t.Fatal(err)
		}
		if got := tunnelGet(t, d, "files.example.test:"+port); got != "hello" {
			t.Errorf("%s tunnel: got %q", transport, got)
		}
		tunnelGet(t, d, "files.example.test:"+closed)
		tunnelGet(t, d, "privacy-nx.example.test:"+port)
		d.Close()
	}
	// Absolute-form over HTTP/1.1: one that works, refusals, a response
	// that breaks off; a prohibited target; a name the upstreams cannot
	// resolve. Then CONNECT over HTTP/1.1, and one without credentials,
	// which the website gets.
	proxyGet := func(r *running, target string, want int) {
		f := &tunnelFixture{running: r, user: "alice", token: "s3cret-token"}
		resp, err := f.proxyClients(t)["h1 proxy"].Get("http://" + target + "/file?privacy-query=1")
		if err != nil {
			t.Fatalf("absolute-form to %s: %v", target, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("absolute-form to %s: %s, want %d", target, resp.Status, want)
		}
	}
	proxyGet(good, "files.example.test:"+port, http.StatusOK)
	proxyGet(good, "files.example.test:"+closed, http.StatusBadGateway)
	proxyGet(good, "privacy-nx.example.test:"+port, http.StatusBadGateway)
	proxyGet(good, "files.example.test:"+breakingPort, http.StatusOK) // and then the body breaks off
	proxyGet(strict, "files.example.test:"+port, http.StatusForbidden)
	proxyGet(down, "privacy-gone.example.test:"+port, http.StatusBadGateway)
	// CONNECT over HTTP/1.1, by curl.
	proxy := []string{"-x", "https://" + users[0] + "@" + good.addr, "--proxy-cacert", good.cert.CertFile, "-p"}
	if _, body, err := relaytest.Curl(t, append(proxy, "http://files.example.test:"+port+"/?privacy-query=3")...); err != nil || string(body) != "hello" {
		t.Errorf("curl CONNECT: %q %v", body, err)
	}
	if _, _, err := relaytest.Curl(t, append(proxy, "http://files.example.test:"+closed+"/?privacy-query=3")...); err == nil {
		t.Error("curl CONNECT to a closed port succeeded")
	}
	resp, _ := get(t, good.clients(t)["h2"], newRequest(t, "CONNECT", good.url("/")))
	if resp.StatusCode == http.StatusOK {
		t.Error("a CONNECT without credentials was tunneled")
	}

	lines := strings.Join(logs.Lines(), "\n")
	if !strings.Contains(lines, "upstreams failed") {
		t.Errorf("the failing upstreams were not logged; the log:\n%s", lines)
	}
	for _, l := range logs.Leaks(private) {
		t.Errorf("logged at info: %s", l)
	}
}

// askDoH asks r's DoH for name's A records and returns the answer's rcode.
func askDoH(t *testing.T, c *http.Client, r *running, method, name string) int {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	return exchangeDoH(t, c, r, method, q).Rcode
}

// exchangeDoH sends q to r's DoH with ID 0, by GET or POST, and returns
// the answer.
func exchangeDoH(t *testing.T, c *http.Client, r *running, method string, q *dns.Msg) *dns.Msg {
	t.Helper()
	q.Id = 0
	name := q.Question[0].Name
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	var req *http.Request
	if method == "GET" {
		req = newRequest(t, "GET", r.url("/dns-query?dns="+base64.RawURLEncoding.EncodeToString(wire)))
	} else {
		req, _ = http.NewRequestWithContext(t.Context(), "POST", r.url("/dns-query"), bytes.NewReader(wire))
		req.Header.Set("Content-Type", "application/dns-message")
	}
	resp, body := get(t, c, req)
	a := new(dns.Msg)
	if resp.StatusCode != http.StatusOK || a.Unpack(body) != nil {
		t.Fatalf("%s %s: %s %q", method, name, resp.Status, body)
	}
	return a
}

// tunnelGet sends a GET through d to target and returns the body, or ""
// when the tunnel is refused.
func tunnelGet(t *testing.T, d *tunnel.Dialer, target string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		t.Fatalf("dial %s: %v", target, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /?privacy-query=2 HTTP/1.0\r\nHost: "+target+"\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// breakingTarget takes each connection, sends the start of a response to
// a request on it, then resets it.
func breakingTarget(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			bufio.NewReader(c).Peek(1) // a request, or the start of a TLS handshake
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nthe start")
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// closedPort is a loopback port that nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}
