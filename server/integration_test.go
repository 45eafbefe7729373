package server_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/porta443/porta/internal/testenv"
	"github.com/porta443/porta/server"
)

// TestDoHIsRoutedOnItsPath: the DoH path and every path below it reach the
// resolver over h1, h2 and h3; a path that only starts the same way, and
// CONNECT, reach the website.
func TestDoHIsRoutedOnItsPath(t *testing.T) {
	eachHTTP2(t, func(t *testing.T) {
		up := testenv.NewUpstream(t, map[string][]string{"www.example.test": {"192.0.2.7"}})
		for _, tc := range []struct {
			dohPath string
			doh     []string
			site    []string
		}{
			{"", []string{"/dns-query", "/dns-query/", "/dns-query/family"}, []string{"/dns-queryx", "/dns", "/"}},
			{"/q", []string{"/q", "/q/x"}, []string{"/dns-query", "/qq"}},
		} {
			r := start(t, server.Config{DoHPath: tc.dohPath, Upstreams: []string{up.URL()}}, false)
			q := new(dns.Msg)
			q.SetQuestion("www.example.test.", dns.TypeA)
			wire, _ := q.Pack()
			param := "?dns=" + base64.RawURLEncoding.EncodeToString(wire)
			for name, c := range r.clients(t) {
				for _, p := range tc.doh {
					resp, body := get(t, c, newRequest(t, "GET", r.url(p+param)))
					a := new(dns.Msg)
					if resp.StatusCode != 200 || a.Unpack(body) != nil || len(a.Answer) != 1 || !strings.Contains(a.Answer[0].String(), "192.0.2.7") {
						t.Errorf("%s GET %s: %d %q, want the DoH answer", name, p, resp.StatusCode, body)
					}
				}
				for _, p := range tc.site {
					resp, _ := get(t, c, newRequest(t, "GET", r.url(p+param)))
					if ct := resp.Header.Get("Content-Type"); ct == "application/dns-message" {
						t.Errorf("%s GET %s: a DoH answer off the DoH path", name, p)
					}
				}
			}
		}
	})
}

// TestDigOverTheServer: dig +https and +https-get get answers from the
// running server, which forwards to its loopback upstream.
func TestDigOverTheServer(t *testing.T) {
	eachHTTP2(t, func(t *testing.T) {
		dig := testenv.LookPath(t, "dig", "bind9-dnsutils")
		up := testenv.NewUpstream(t, map[string][]string{"www.example.test": {"192.0.2.7", "2001:db8::7"}})
		r := start(t, server.Config{Upstreams: []string{up.URL()}}, false)
		host, port, _ := net.SplitHostPort(r.addr)
		for _, mode := range []string{"+https", "+https-get"} {
			for qtype, want := range map[string]string{"A": "192.0.2.7", "AAAA": "2001:db8::7"} {
				out, err := exec.Command(dig, mode, "+short", "+tries=1", "+time=5", "@"+host, "-p", port, "www.example.test", qtype).CombinedOutput()
				if err != nil || strings.TrimSpace(string(out)) != want {
					t.Errorf("dig %s %s: %q %v, want %s", mode, qtype, out, err, want)
				}
			}
		}
	})
}

// tunnelFixture is a server with a user, a file target on loopback, and
// names for it in the upstream.
type tunnelFixture struct {
	*running
	user, token string
	target      string // host:port of a file server on 127.0.0.1
	file        []byte
}

func newTunnelFixture(t *testing.T, allowPrivate bool) *tunnelFixture {
	t.Helper()
	file := bytes.Repeat([]byte("porta tunnel test data\n"), 1<<20/23*8) // ~8 MiB
	target := serveBytes(t, file)
	up := testenv.NewUpstream(t, map[string][]string{"files.example.test": {"127.0.0.1"}})
	r := start(t, server.Config{
		Users:        []string{"alice:s3cret-token"},
		AllowPrivate: allowPrivate,
		Upstreams:    []string{up.URL()},
	}, false)
	return &tunnelFixture{running: r, user: "alice", token: "s3cret-token", target: target, file: file}
}

func serveBytes(t *testing.T, file []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(file)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestCurlThroughTheServer: Debian's curl uses the running server as its
// HTTPS proxy, with CONNECT and with absolute-form requests, and target
// names resolve through the server's own resolver.
func TestCurlThroughTheServer(t *testing.T) {
	eachHTTP2(t, func(t *testing.T) {
		curl := testenv.LookPath(t, "curl", "curl")
		f := newTunnelFixture(t, true)
		_, targetPort, _ := net.SplitHostPort(f.target)
		want := sha256.Sum256(f.file)
		proxy := "https://" + f.user + ":" + f.token + "@" + f.addr
		for _, tc := range []struct {
			name string
			args []string
		}{
			{"CONNECT", []string{"-p"}},
			{"absolute-form", nil},
		} {
			for _, host := range []string{"127.0.0.1", "files.example.test"} {
				args := append([]string{"-sS", "--fail", "--max-time", "30", "-x", proxy, "--proxy-cacert", f.cert.CertFile}, tc.args...)
				out, err := exec.Command(curl, append(args, "http://"+host+":"+targetPort+"/file")...).Output()
				if err != nil || sha256.Sum256(out) != want {
					t.Errorf("%s to %s: %d bytes, %v %s", tc.name, host, len(out), err, errText(err))
				}
			}
		}
	})
}

func errText(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// TestTunnelRefusesPrivateTargets: without AllowPrivate an authenticated
// user is refused loopback targets, by address or by a name that resolves
// there, and told why.
func TestTunnelRefusesPrivateTargets(t *testing.T) {
	eachHTTP2(t, func(t *testing.T) {
		f := newTunnelFixture(t, false)
		_, port, _ := net.SplitHostPort(f.target)
		for name, c := range f.proxyClients(t) {
			for _, host := range []string{"127.0.0.1", "files.example.test", "localhost"} {
				resp, err := c.Get("http://" + host + ":" + port + "/")
				if err != nil {
					t.Errorf("%s: %s: %v; want an answer saying why", name, host, err)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Header.Get("Proxy-Status"), "destination_ip_prohibited") || bytes.Equal(body, f.file) {
					t.Errorf("%s: %s: %s, Proxy-Status %q; want 403 destination_ip_prohibited", name, host, resp.Status, resp.Header.Get("Proxy-Status"))
				}
			}
		}
	})
}

// proxyClients are Go HTTP clients that use the fixture as an HTTPS proxy:
// absolute-form for http:// targets, CONNECT for https:// ones.
func (f *tunnelFixture) proxyClients(t *testing.T) map[string]*http.Client {
	tr := &http.Transport{TLSClientConfig: f.cert.ClientTLS()}
	tr.Proxy = func(*http.Request) (*url.URL, error) {
		return url.Parse("https://" + f.user + ":" + f.token + "@" + f.addr)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return map[string]*http.Client{"h1 proxy": {Transport: tr}}
}

// TestProbesSeeOnlyTheWebsite: proxy-shaped requests without valid
// credentials get from a server with users exactly what a server without
// users answers, on h1, h2 and h3.
func TestProbesSeeOnlyTheWebsite(t *testing.T) {
	eachHTTP2(t, func(t *testing.T) {
		dir := writeSite(t, siteFiles)
		plain := start(t, server.Config{SiteDir: dir}, false)
		guarded := start(t, server.Config{SiteDir: dir, Users: []string{"alice:s3cret-token"}, AllowPrivate: true}, false)
		bad := []string{"", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:wrong")),
			"Basic " + base64.StdEncoding.EncodeToString([]byte("mallory:s3cret-token")), "Basic !!!", "Bearer s3cret-token"}
		answers := func(r *running) []string {
			var out []string
			clients := r.clients(t)
			for _, name := range []string{"h1", "h2", "h3"} {
				c := clients[name]
				for _, auth := range bad {
					for _, req := range []*http.Request{
						newRequest(t, "CONNECT", r.url("/")),
						newRequest(t, "GET", r.url("/")),
						newRequest(t, "GET", r.url("/missing")),
						newRequest(t, "POST", r.url("/")),
					} {
						if req.Method == "CONNECT" && name == "h1" {
							continue // Go's HTTP/1 client does not send CONNECT this way
						}
						if auth != "" {
							req.Header.Set("Proxy-Authorization", auth)
						}
						resp, err := c.Do(req)
						if err != nil {
							out = append(out, name+" "+req.Method+" error "+err.Error())
							continue
						}
						body, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						resp.Header.Del("Date")
						out = append(out, name+" "+req.Method+" "+req.URL.Path+" "+resp.Status+" "+headerString(resp.Header)+" "+string(body))
					}
				}
			}
			return out
		}
		p, g := answers(plain), answers(guarded)
		if len(p) != len(g) {
			t.Fatalf("%d answers vs %d", len(p), len(g))
		}
		for i := range p {
			// The two servers have their own ports (in Alt-Svc) and ETags differ by nothing else.
			pp := strings.ReplaceAll(p[i], portOf(plain.addr), "PORT")
			gg := strings.ReplaceAll(g[i], portOf(guarded.addr), "PORT")
			if pp != gg {
				t.Errorf("without users: %s\nwith users:    %s", pp, gg)
			}
		}
	})
}

func portOf(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

func headerString(h http.Header) string {
	var b strings.Builder
	h.Write(&b)
	return b.String()
}

// TestUsersFileReload: a user added to the users file may tunnel after
// Reload; one removed may not.
func TestUsersFileReload(t *testing.T) {
	dir := t.TempDir()
	usersFile := filepath.Join(dir, "users")
	os.WriteFile(usersFile, []byte("bob:bob-token\n"), 0o600)
	target := serveBytes(t, []byte("hello"))
	r := start(t, server.Config{UsersFile: usersFile, AllowPrivate: true}, false)
	try := func(user, token string) bool {
		tr := &http.Transport{TLSClientConfig: r.cert.ClientTLS()}
		tr.Proxy = func(*http.Request) (*url.URL, error) {
			return url.Parse("https://" + user + ":" + token + "@" + r.addr)
		}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get("http://" + target + "/")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body) == "hello"
	}
	if !try("bob", "bob-token") || try("carol", "carol-token") {
		t.Fatal("before reload: want bob in, carol out")
	}
	os.WriteFile(usersFile, []byte("carol:carol-token\n"), 0o600)
	if err := r.srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if try("bob", "bob-token") || !try("carol", "carol-token") {
		t.Fatal("after reload: want carol in, bob out")
	}
	os.WriteFile(usersFile, []byte("broken line\n"), 0o600)
	if err := r.srv.Reload(); err == nil {
		t.Fatal("a broken users file was accepted")
	}
	if !try("carol", "carol-token") {
		t.Fatal("a failed reload dropped the users in force")
	}
}

// TestDoHURITooLong: a ?dns= longer than any DNS message reaches the DoH
// handler and gets 414 on every protocol, rather than being cut off by the
// server's header limit first.
func TestDoHURITooLong(t *testing.T) {
	eachHTTP2(t, func(t *testing.T) {
		r := start(t, server.Config{}, false)
		param := "?dns=" + strings.Repeat("A", 90_000)
		for name, c := range r.clients(t) {
			resp, _ := get(t, c, newRequest(t, "GET", r.url("/dns-query"+param)))
			if resp.StatusCode != http.StatusRequestURITooLong {
				t.Errorf("%s: %d, want 414", name, resp.StatusCode)
			}
		}
	})
}
