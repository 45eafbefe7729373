package server

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path"
	"strings"
	"time"
)

//go:embed site
var builtinSite embed.FS

// newSite builds the website: a static folder, a reverse proxy, or the
// built-in homepage, each sending HSTS over HTTPS. Whatever it is, CONNECT
// is not something a website serves: it answers 405 like any other method
// it does not take.
func newSite(cfg *Config, log *slog.Logger) (http.Handler, error) {
	hsts, err := newHSTS(cfg.HSTSMaxAge)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.SiteDir != "" && cfg.SiteProxy != "":
		return nil, &FieldsError{Format: "%s and %s: give one", Fields: []string{"SiteDir", "SiteProxy"}}
	case cfg.SiteDir != "":
		root, err := os.OpenRoot(cfg.SiteDir)
		if err != nil {
			return nil, &ConfigError{Field: "SiteDir", Err: err}
		}
		return newStaticSite(root.FS(), hsts), nil
	case cfg.SiteProxy != "":
		return newProxySite(cfg.SiteProxy, hsts, log)
	}
	files, err := fs.Sub(builtinSite, "site")
	if err != nil {
		return nil, err
	}
	return newStaticSite(files, hsts), nil
}

// staticSite serves files with their content types, conditional and range
// requests (http.ServeContent), an ETag from size and modification time, a
// folder's index.html, and never a directory listing or a dotfile. Every
// answer says X-Content-Type-Options: nosniff, since it names the content
// type itself.
type staticSite struct {
	files   fs.FS
	hsts    hsts
	nosniff []string // shared by every response, never written into
}

func newStaticSite(files fs.FS, hsts hsts) *staticSite {
	return &staticSite{files: files, hsts: hsts, nosniff: []string{"nosniff"}}
}

func (s *staticSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.hsts.addTo(w.Header(), r.TLS != nil)
	w.Header()["X-Content-Type-Options"] = s.nosniff
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	urlPath := r.URL.Path
	if !strings.HasPrefix(urlPath, "/") {
		urlPath = "/" + urlPath
	}
	name := strings.TrimPrefix(path.Clean(urlPath), "/")
	if name == "" {
		name = "."
	}
	if hidden(name) {
		s.notFound(w, r)
		return
	}
	f, err := s.files.Open(name)
	if err != nil {
		s.notFound(w, r)
		return
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		s.notFound(w, r)
		return
	}
	if info.IsDir() {
		if !strings.HasSuffix(urlPath, "/") {
			target := path.Base(urlPath) + "/"
			if r.URL.RawQuery != "" {
				target += "?" + r.URL.RawQuery
			}
			http.Redirect(w, r, target, http.StatusMovedPermanently)
			return
		}
		f.Close()
		name = path.Join(name, "index.html")
		if f, err = s.files.Open(name); err != nil {
			s.notFound(w, r)
			return
		}
		defer f.Close()
		if info, err = f.Stat(); err != nil || info.IsDir() {
			s.notFound(w, r)
			return
		}
	}
	s.serveFile(w, r, http.StatusOK, name, f, info)
}

func (s *staticSite) serveFile(w http.ResponseWriter, r *http.Request, code int, name string, f fs.File, info fs.FileInfo) {
	content, ok := f.(interface {
		Read([]byte) (int, error)
		Seek(int64, int) (int64, error)
	})
	if !ok {
		http.Error(w, "500 internal server error", http.StatusInternalServerError)
		return
	}
	if !info.ModTime().IsZero() {
		w.Header().Set("ETag", fmt.Sprintf(`"%x-%x"`, info.ModTime().UnixNano(), info.Size()))
	}
	if code != http.StatusOK {
		// An error page: no ranges, no conditionals, just the page.
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(code)
		if r.Method != http.MethodHead {
			_, _ = io.Copy(w, content)
		}
		return
	}
	http.ServeContent(w, r, name, info.ModTime(), content)
}

// notFound serves the site's 404.html if it has one.
func (s *staticSite) notFound(w http.ResponseWriter, r *http.Request) {
	if f, err := s.files.Open("404.html"); err == nil {
		defer f.Close()
		if info, err := f.Stat(); err == nil && !info.IsDir() {
			s.serveFile(w, r, http.StatusNotFound, "404.html", f, info)
			return
		}
	}
	http.Error(w, "404 page not found", http.StatusNotFound)
}

// hidden reports whether a cleaned path has a part starting with a dot
// (.git, .env, .htpasswd): such files are never served.
func hidden(name string) bool {
	for part := range strings.SplitSeq(name, "/") {
		if strings.HasPrefix(part, ".") && part != "." {
			return true
		}
	}
	return false
}

// newProxySite forwards requests to a backend, keeping the Host the visitor
// asked for and setting X-Forwarded-For/Host/Proto. Streamed responses are
// flushed as they come; WebSocket upgrades pass through. The backend's
// Strict-Transport-Security is passed on; where it sends none, hsts is
// added, since the HTTPS it is about is the server's own.
func newProxySite(raw string, hsts hsts, log *slog.Logger) (http.Handler, error) {
	target, err := url.Parse(raw)
	if err != nil {
		return nil, &ConfigError{Field: "SiteProxy", Err: err}
	}
	if (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return nil, &ConfigError{Field: "SiteProxy", Value: raw, Err: errors.New("want an http:// or https:// URL with a host")}
	}
	transport := &http.Transport{
		Proxy:                 nil, // the backend is local: never through an environment proxy
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport: transport,
		// Not the log package's default logger, which prints at every level.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ModifyResponse: func(resp *http.Response) error {
			hsts.addTo(resp.Header, resp.Request.TLS != nil) // the visitor's request, cloned
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			log.Warn("site backend", "err", err)
			hsts.addTo(w.Header(), r.TLS != nil)
			http.Error(w, "502 bad gateway", http.StatusBadGateway)
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			hsts.addTo(w.Header(), r.TLS != nil)
			w.Header().Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
			http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
			return
		}
		rp.ServeHTTP(w, r)
	}), nil
}
