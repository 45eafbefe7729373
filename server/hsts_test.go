package server_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/porta443/porta/server"
)

// TestHSTS: the website's answers over HTTP/1.1, HTTP/2 and HTTP/3 carry
// one Strict-Transport-Security, a year's by default; --site-proxy passes
// the backend's on and adds it where the backend sends none; the redirect
// listener and the site served over plain HTTP never send it.
func TestHSTS(t *testing.T) {
	const year = "max-age=31536000"
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("backend"))
	}))
	t.Cleanup(plain.Close)
	own := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=600; includeSubDomains")
		w.Write([]byte("backend"))
	}))
	t.Cleanup(own.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	dir := writeSite(t, siteFiles)

	for _, tc := range []struct {
		name string
		cfg  server.Config
		path string
		want []string
	}{
		{"built-in site", server.Config{}, "/", []string{year}},
		{"built-in not found", server.Config{}, "/missing", []string{year}},
		{"site dir", server.Config{SiteDir: dir}, "/style.css", []string{year}},
		{"site dir redirect", server.Config{SiteDir: dir}, "/docs", []string{year}},
		{"an hour", server.Config{SiteDir: dir, HSTSMaxAge: time.Hour}, "/", []string{"max-age=3600"}},
		{"off", server.Config{SiteDir: dir, HSTSMaxAge: -1}, "/", nil},
		{"proxy, backend without", server.Config{SiteProxy: plain.URL}, "/", []string{year}},
		{"proxy, backend with its own", server.Config{SiteProxy: own.URL}, "/", []string{"max-age=600; includeSubDomains"}},
		{"proxy, backend down", server.Config{SiteProxy: dead}, "/", []string{year}},
		{"proxy off", server.Config{SiteProxy: plain.URL, HSTSMaxAge: -1}, "/", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := start(t, tc.cfg, true)
			for proto, c := range r.clients(t) {
				resp, _ := get(t, c, newRequest(t, "GET", r.url(tc.path)))
				if got := resp.Header.Values("Strict-Transport-Security"); !slices.Equal(got, tc.want) {
					t.Errorf("%s GET %s: %d, Strict-Transport-Security %q, want %q", proto, tc.path, resp.StatusCode, got, tc.want)
				}
			}
			noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := noRedirect.Do(newRequest(t, "GET", "http://"+r.httpAddr+tc.path))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Values("Strict-Transport-Security"); resp.StatusCode != 301 || got != nil {
				t.Errorf("plain-HTTP redirect: %d, Strict-Transport-Security %q", resp.StatusCode, got)
			}
		})
	}

	// The same website served over plain HTTP (embedded in another
	// program) sends none: RFC 6797 §7.2.
	for name, cfg := range map[string]server.Config{"built-in": {}, "proxy": {SiteProxy: plain.URL}} {
		site, err := server.NewSiteHandler(cfg)
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(site)
		resp, err := hs.Client().Do(newRequest(t, "GET", hs.URL+"/"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		hs.Close()
		if got := resp.Header.Values("Strict-Transport-Security"); resp.StatusCode != 200 || got != nil {
			t.Errorf("%s site over plain HTTP: %d, Strict-Transport-Security %q", name, resp.StatusCode, got)
		}
	}
}
