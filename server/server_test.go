package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/porta443/porta/internal/testenv"
	"github.com/porta443/porta/server"
	"github.com/quic-go/quic-go/http3"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The stock net/http server the probe tests compare with must offer
	// extended CONNECT as porta's does (for CONNECT-UDP).
	testenv.RunWithGODEBUG("http2xconnect=1")
	goleak.VerifyTestMain(m,
		// certmagic's, not ours: a rate limiter per ACME CA and account
		// that lives as long as the process, and the refresher of a lock
		// file, which ends within 5 s of the lock's release.
		goleak.IgnoreTopFunction("github.com/caddyserver/certmagic.(*RingBufferRateLimiter).permit"),
		goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.keepLockfileFresh"),
	)
}

// running is a server on 127.0.0.1 with a certificate its clients trust.
type running struct {
	srv      *server.Server
	cert     *testenv.Cert
	addr     string // TLS and QUIC
	httpAddr string // plain HTTP redirect, if asked for
}

// prepare makes a server for cfg (a zero cert source gets the test
// certificate) and its listeners on loopback ports, plain HTTP too when
// httpAddr is not "", failing t on an error; it does not serve.
func prepare(t *testing.T, cfg server.Config, httpAddr string) (*server.Server, server.Listeners, *testenv.Cert) {
	t.Helper()
	cert := newCertFor(t, &cfg)
	cfg.StdHTTP2 = cfg.StdHTTP2 || stdHTTP2(t)
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := server.Listen("127.0.0.1:0", httpAddr)
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	return srv, ls, cert
}

// start runs a server for cfg on loopback, as prepare makes it. It is shut
// down when the test ends.
func start(t *testing.T, cfg server.Config, withHTTP bool) *running {
	t.Helper()
	httpAddr := ""
	if withHTTP {
		httpAddr = "127.0.0.1:0"
	}
	srv, ls, cert := prepare(t, cfg, httpAddr)
	return serve(t, srv, ls, cert)
}

// serve runs srv on ls until the test ends.
func serve(t *testing.T, srv *server.Server, ls server.Listeners, cert *testenv.Cert) *running {
	t.Helper()
	t.Cleanup(func() { srv.Close() })
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ls) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	r := &running{srv: srv, cert: cert, addr: ls.TCP.Addr().String()}
	if ls.HTTP != nil {
		r.httpAddr = ls.HTTP.Addr().String()
	}
	return r
}

// eachHTTP2 runs f as two subtests, whose servers (made by prepare) serve
// HTTP/2 with porta's server ("h2porta") and with net/http's
// ("h2std", Config.StdHTTP2), so that the faces behave the same over both.
func eachHTTP2(t *testing.T, f func(t *testing.T)) {
	for _, name := range []string{"h2porta", "h2std"} {
		t.Run(name, f)
	}
}

// stdHTTP2 reports whether t runs under eachHTTP2's "h2std".
func stdHTTP2(t testing.TB) bool {
	return slices.Contains(strings.Split(t.Name(), "/"), "h2std")
}

// newCertFor gives cfg the test certificate unless it has a source, and
// a loopback upstream unless it has one: no test asks beyond loopback.
func newCertFor(t *testing.T, cfg *server.Config) *testenv.Cert {
	if len(cfg.Upstreams) == 0 {
		cfg.Upstreams = []string{testenv.NewUpstream(t, nil).URL()}
	}
	cert := testenv.NewCert(t)
	if cfg.CertFile == "" && !cfg.SelfSigned {
		cfg.CertFile, cfg.KeyFile = cert.CertFile, cert.KeyFile
	}
	return cert
}

func (r *running) url(path string) string { return "https://" + r.addr + path }

// clients are one HTTP client per protocol, all trusting r's certificate.
func (r *running) clients(t *testing.T) map[string]*http.Client {
	t.Helper()
	h1 := &http.Transport{TLSClientConfig: r.cert.ClientTLS()}
	var p1 http.Protocols
	p1.SetHTTP1(true)
	h1.Protocols = &p1
	h2 := &http.Transport{TLSClientConfig: r.cert.ClientTLS()}
	var p2 http.Protocols
	p2.SetHTTP2(true)
	h2.Protocols = &p2
	h3 := &http3.Transport{TLSClientConfig: r.cert.ClientTLS()}
	t.Cleanup(func() {
		h1.CloseIdleConnections()
		h2.CloseIdleConnections()
		h3.Close()
	})
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return map[string]*http.Client{
		"h1": {Transport: h1, Timeout: 10 * time.Second, CheckRedirect: noRedirect},
		"h2": {Transport: h2, Timeout: 10 * time.Second, CheckRedirect: noRedirect},
		"h3": {Transport: h3, Timeout: 10 * time.Second, CheckRedirect: noRedirect},
	}
}

func get(t *testing.T, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return resp, body
}

func newRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// writeSite makes a small static site in a temp folder.
func writeSite(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestReloadKeepsConnectionsAndServesNewCertificate(t *testing.T) {
	eachHTTP2(t, func(t *testing.T) {
		r := start(t, server.Config{}, false)
		first := r.cert
		conn, err := tls.Dial("tcp", r.addr, first.ClientTLS("http/1.1"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()

		next := testenv.NewCert(t)
		for _, f := range [][2]string{{next.CertFile, first.CertFile}, {next.KeyFile, first.KeyFile}} {
			b, err := os.ReadFile(f[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f[1], b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.srv.Reload(); err != nil {
			t.Fatal(err)
		}
		// The connection made before the reload still works.
		if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 12)
		if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "HTTP/1.1 200" {
			t.Fatalf("old connection after reload: %q, %v", buf, err)
		}
		// A new handshake gets the new certificate, and only it.
		c2, err := tls.Dial("tcp", r.addr, next.ClientTLS("http/1.1"))
		if err != nil {
			t.Fatalf("new certificate not served: %v", err)
		}
		c2.Close()
		if c3, err := tls.Dial("tcp", r.addr, first.ClientTLS("http/1.1")); err == nil {
			c3.Close()
			t.Fatal("old certificate still served after reload")
		}

		// A broken file is refused and the certificate in use stays.
		if err := os.WriteFile(first.KeyFile, []byte("not a key"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := r.srv.Reload(); err == nil {
			t.Fatal("Reload accepted a broken key")
		}
		c4, err := tls.Dial("tcp", r.addr, next.ClientTLS("http/1.1"))
		if err != nil {
			t.Fatalf("after a failed reload: %v", err)
		}
		c4.Close()
	})
}

func TestSelfSignedIsKeptAndPinned(t *testing.T) {
	state := t.TempDir()
	upstream := []string{testenv.NewUpstream(t, nil).URL()}
	a, err := server.New(server.Config{SelfSigned: true, StateDir: state, Upstreams: upstream})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := server.New(server.Config{SelfSigned: true, StateDir: state, Upstreams: upstream})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.Pin() != b.Pin() || len(a.Pin()) != len("sha256//")+44 {
		t.Fatalf("pins %q and %q: want the same sha256//BASE64 on each start", a.Pin(), b.Pin())
	}
}

// TestConfigErrors: what New refuses names the Config field it is about
// (the first of them, for a rule about several) in a typed error.
func TestConfigErrors(t *testing.T) {
	cert := testenv.NewCert(t)
	users := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(users, []byte("no token here\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withCert := func(c server.Config) server.Config {
		c.CertFile, c.KeyFile = cert.CertFile, cert.KeyFile
		return c
	}
	for _, tc := range []struct {
		name  string
		cfg   server.Config
		field string
	}{
		{"no certificate", server.Config{}, "CertFile"},
		{"missing cert file", server.Config{CertFile: "/nonexistent.pem", KeyFile: cert.KeyFile}, "CertFile"},
		{"cert without key", server.Config{CertFile: cert.CertFile}, "CertFile"},
		{"key without cert", server.Config{KeyFile: cert.KeyFile}, "KeyFile"},
		{"key that is not a key", server.Config{CertFile: cert.CertFile, KeyFile: cert.CertFile}, "CertFile"},
		{"two certificate sources", withCert(server.Config{SelfSigned: true}), "SelfSigned"},
		{"site and proxy", withCert(server.Config{SiteDir: t.TempDir(), SiteProxy: "http://127.0.0.1:1"}), "SiteDir"},
		{"missing site", withCert(server.Config{SiteDir: "/nonexistent"}), "SiteDir"},
		{"proxy not http", withCert(server.Config{SiteProxy: "ftp://x"}), "SiteProxy"},
		{"doh path", withCert(server.Config{DoHPath: "dns-query"}), "DoHPath"},
		{"upstream", withCert(server.Config{Upstreams: []string{"ftp://127.0.0.1"}}), "Upstreams"},
		{"user", withCert(server.Config{Users: []string{"nobody"}}), "Users"},
		{"users file", withCert(server.Config{UsersFile: users}), "UsersFile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := server.New(tc.cfg)
			var field string
			if ce, ok := errors.AsType[*server.ConfigError](err); ok {
				field = ce.Field
			} else if fe, ok := errors.AsType[*server.FieldsError](err); ok {
				field = fe.Fields[0]
			}
			if field != tc.field {
				t.Fatalf("New: %v; want a typed error for Config.%s", err, tc.field)
			}
			if !strings.Contains(err.Error(), "Config."+tc.field) {
				t.Errorf("New: %q does not name Config.%s", err, tc.field)
			}
			if strings.Contains(err.Error(), "--") {
				t.Errorf("New: %q names a flag", err)
			}
		})
	}
}

func TestListenTakesTheSamePortForUDP(t *testing.T) {
	ls, err := server.Listen("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	_, tcpPort, _ := net.SplitHostPort(ls.TCP.Addr().String())
	_, udpPort, _ := net.SplitHostPort(ls.UDP.LocalAddr().String())
	if tcpPort != udpPort {
		t.Fatalf("TCP port %s, UDP port %s", tcpPort, udpPort)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	cert := testenv.NewCert(t)
	_, err := server.New(server.Config{CertFile: cert.CertFile, KeyFile: cert.KeyFile, HSTSMaxAge: 500 * time.Millisecond})
	ce, ok := errors.AsType[*server.ConfigError](err)
	if !ok || ce.Field != "HSTSMaxAge" {
		t.Fatalf("New: %v; want a *server.ConfigError for HSTSMaxAge", err)
	}
}
