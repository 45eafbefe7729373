package server_test

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/porta443/porta/internal/testenv"
	"github.com/porta443/porta/server"
)

var siteFiles = map[string]string{
	"index.html":        "<html><body>home</body></html>",
	"style.css":         "body { color: red }",
	"app.js":            "console.log(1)",
	"data.json":         `{"a":1}`,
	"docs/index.html":   "<p>docs</p>",
	"empty/readme.txt":  "no index here",
	".git/config":       "secret",
	"dir/.env":          "SECRET=1",
	"img/pixel.svg":     `<svg xmlns="http://www.w3.org/2000/svg"/>`,
	"downloads/big.bin": strings.Repeat("0123456789", 100_000),
}

// TestSiteOverEveryProtocol: curl over HTTP/1.1 and HTTP/2, and quic-go
// over HTTP/3, get the same bytes; HTTP/1 and HTTP/2 advertise HTTP/3.
func TestSiteOverEveryProtocol(t *testing.T) {
	eachHTTP2(t, func(t *testing.T) {
		curl := testenv.LookPath(t, "curl", "curl")
		dir := writeSite(t, siteFiles)
		r := start(t, server.Config{SiteDir: dir}, false)
		want := []byte(siteFiles["downloads/big.bin"])

		for _, proto := range []struct{ flag, version string }{{"--http1.1", "1.1"}, {"--http2", "2"}} {
			out, err := exec.Command(curl, "-sS", "--fail", proto.flag, "--cacert", r.cert.CertFile,
				"-o", "-", "-D", filepath.Join(t.TempDir(), "h"), "-w", "%{http_version}",
				r.url("/downloads/big.bin")).Output()
			if err != nil {
				t.Fatalf("curl %s: %v", proto.flag, err)
			}
			body, version := out[:len(out)-len(proto.version)], string(out[len(out)-len(proto.version):])
			if version != proto.version || !bytes.Equal(body, want) {
				t.Fatalf("curl %s: HTTP/%s, %d bytes; want HTTP/%s, %d bytes", proto.flag, version, len(body), proto.version, len(want))
			}
			hdr, err := exec.Command(curl, "-sS", "-I", proto.flag, "--cacert", r.cert.CertFile, r.url("/")).Output()
			if err != nil {
				t.Fatal(err)
			}
			_, port, _ := strings.Cut(r.addr, ":")
			if !strings.Contains(strings.ToLower(string(hdr)), `alt-svc: h3=":`+port+`"`) {
				t.Fatalf("curl %s: no Alt-Svc for HTTP/3 on port %s in\n%s", proto.flag, port, hdr)
			}
		}

		h3 := r.clients(t)["h3"]
		resp, body := get(t, h3, newRequest(t, "GET", r.url("/downloads/big.bin")))
		if resp.ProtoMajor != 3 || !bytes.Equal(body, want) {
			t.Fatalf("HTTP/3: %s, %d bytes", resp.Proto, len(body))
		}
		if resp.Header.Get("Alt-Svc") != "" {
			t.Fatal("an HTTP/3 response carries Alt-Svc")
		}
	})
}

func TestStaticSite(t *testing.T) {
	eachHTTP2(t, func(t *testing.T) {
		dir := writeSite(t, siteFiles)
		// A link out of the site folder must not be followed.
		if err := os.Symlink("/etc", filepath.Join(dir, "etc")); err != nil {
			t.Fatal(err)
		}
		r := start(t, server.Config{SiteDir: dir}, false)
		for name, c := range r.clients(t) {
			t.Run(name, func(t *testing.T) {
				for _, tc := range []struct {
					method, path string
					code         int
					contentType  string
					body         string
				}{
					{"GET", "/", 200, "text/html; charset=utf-8", siteFiles["index.html"]},
					{"GET", "/style.css", 200, "text/css; charset=utf-8", siteFiles["style.css"]},
					{"GET", "/app.js", 200, "text/javascript; charset=utf-8", siteFiles["app.js"]},
					{"GET", "/data.json", 200, "application/json", siteFiles["data.json"]},
					{"GET", "/img/pixel.svg", 200, "image/svg+xml", siteFiles["img/pixel.svg"]},
					{"GET", "/docs/", 200, "text/html; charset=utf-8", siteFiles["docs/index.html"]},
					{"HEAD", "/style.css", 200, "text/css; charset=utf-8", ""},
					{"GET", "/docs", 301, "", ""},
					{"GET", "/empty/", 404, "", ""},           // no listing
					{"GET", "/.git/config", 404, "", ""},      // no dotfiles
					{"GET", "/dir/.env", 404, "", ""},         // anywhere
					{"GET", "/../../etc/passwd", 404, "", ""}, // no escape
					{"GET", "/etc/passwd", 404, "", ""},       // nor through a link
					{"GET", "/missing", 404, "", ""},
					{"POST", "/", 405, "", ""},
					{"DELETE", "/style.css", 405, "", ""},
				} {
					resp, body := get(t, c, newRequest(t, tc.method, r.url(tc.path)))
					if resp.StatusCode != tc.code {
						t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.code)
						continue
					}
					if tc.contentType != "" && resp.Header.Get("Content-Type") != tc.contentType {
						t.Errorf("%s %s: Content-Type %q, want %q", tc.method, tc.path, resp.Header.Get("Content-Type"), tc.contentType)
					}
					if tc.body != "" && string(body) != tc.body {
						t.Errorf("%s %s: body %q, want %q", tc.method, tc.path, body, tc.body)
					}
					if tc.code == 405 && resp.Header.Get("Allow") != "GET, HEAD" {
						t.Errorf("%s %s: Allow %q", tc.method, tc.path, resp.Header.Get("Allow"))
					}
					if tc.code == 404 && strings.Contains(string(body), "secret") {
						t.Errorf("%s %s: leaked %q", tc.method, tc.path, body)
					}
				}
			})
		}
	})
}

func TestStaticSiteConditionalAndRange(t *testing.T) {
	eachHTTP2(t, func(t *testing.T) {
		dir := writeSite(t, siteFiles)
		r := start(t, server.Config{SiteDir: dir}, false)
		for name, c := range r.clients(t) {
			t.Run(name, func(t *testing.T) {
				resp, _ := get(t, c, newRequest(t, "GET", r.url("/style.css")))
				etag, modified := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
				if etag == "" || modified == "" {
					t.Fatalf("no validators: ETag %q, Last-Modified %q", etag, modified)
				}
				for hdr, val := range map[string]string{"If-None-Match": etag, "If-Modified-Since": modified} {
					req := newRequest(t, "GET", r.url("/style.css"))
					req.Header.Set(hdr, val)
					if resp, body := get(t, c, req); resp.StatusCode != 304 || len(body) != 0 {
						t.Errorf("%s: %d with %d bytes, want 304 and none", hdr, resp.StatusCode, len(body))
					}
				}
				req := newRequest(t, "GET", r.url("/style.css"))
				req.Header.Set("If-None-Match", `"something-else"`)
				if resp, _ := get(t, c, req); resp.StatusCode != 200 {
					t.Errorf("a stale ETag: %d, want 200", resp.StatusCode)
				}
				req = newRequest(t, "GET", r.url("/style.css"))
				req.Header.Set("Range", "bytes=0-3")
				if resp, body := get(t, c, req); resp.StatusCode != 206 || string(body) != "body" {
					t.Errorf("Range: %d %q, want 206 \"body\"", resp.StatusCode, body)
				}
			})
		}
	})
}

func TestStaticSiteCustom404(t *testing.T) {
	files := map[string]string{"index.html": "home", "404.html": "<p>lost?</p>"}
	r := start(t, server.Config{SiteDir: writeSite(t, files)}, false)
	resp, body := get(t, r.clients(t)["h2"], newRequest(t, "GET", r.url("/nope")))
	if resp.StatusCode != 404 || string(body) != files["404.html"] {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

// TestBuiltinSite: without --site the server is an ordinary homepage that
// never names porta.
func TestBuiltinSite(t *testing.T) {
	r := start(t, server.Config{}, false)
	for name, c := range r.clients(t) {
		for _, path := range []string{"/", "/style.css", "/missing", "/404.html"} {
			resp, body := get(t, c, newRequest(t, "GET", r.url(path)))
			want := 200
			if path == "/missing" {
				want = 404
			}
			if resp.StatusCode != want {
				t.Errorf("%s GET %s: %d, want %d", name, path, resp.StatusCode, want)
			}
			text := strings.ToLower(string(body) + resp.Header.Get("Server"))
			if strings.Contains(text, "porta") || len(body) == 0 {
				t.Errorf("%s GET %s: %q", name, path, body)
			}
		}
		resp, _ := get(t, c, newRequest(t, "GET", r.url("/")))
		if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", name, ct)
		}
	}
}

func TestRedirectToHTTPS(t *testing.T) {
	r := start(t, server.Config{}, true)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct{ method, path, host string }{
		{"GET", "/a/b?c=d", "example.org"},
		{"POST", "/form", "example.org:8080"},
		{"HEAD", "/", "[::1]:80"},
	} {
		req := newRequest(t, tc.method, "http://"+r.httpAddr+tc.path)
		req.Host = tc.host
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		_, port, _ := strings.Cut(r.addr, ":")
		host := tc.host
		if i := strings.LastIndex(host, ":"); i > 0 && !strings.HasSuffix(host, "]") {
			host = host[:i]
		} else if strings.HasPrefix(host, "[") {
			host = host[:strings.Index(host, "]")+1]
		}
		wantLoc := "https://" + host + ":" + port + tc.path
		wantCode := 301
		if tc.method == "POST" {
			wantCode = 308
		}
		if resp.StatusCode != wantCode || resp.Header.Get("Location") != wantLoc {
			t.Errorf("%s %s Host %s: %d %q, want %d %q", tc.method, tc.path, tc.host, resp.StatusCode, resp.Header.Get("Location"), wantCode, wantLoc)
		}
	}
	// And the target works.
	resp, _ := get(t, r.clients(t)["h1"], newRequest(t, "GET", r.url("/")))
	if resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
}
