package httpproxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"
)

// newForwarder builds the transport and reverse proxy that serve
// absolute-form requests. The transport dials only through Dial, and uses
// no proxy from the environment.
func (s *Server) newForwarder() (*http.Transport, *httputil.ReverseProxy) {
	t := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
			defer cancel()
			return s.cfg.Dial(ctx, network, address)
		},
		DisableCompression:     true, // pass Accept-Encoding and bodies through untouched
		MaxIdleConns:           64,
		MaxIdleConnsPerHost:    8,
		IdleConnTimeout:        90 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 1 << 20,
	}
	rp := &httputil.ReverseProxy{
		Transport: t,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.RawQuery = pr.In.URL.RawQuery // forwarded verbatim
			for name := range pr.Out.Header {
				if strings.HasPrefix(name, "Proxy-") {
					delete(pr.Out.Header, name)
				}
			}
		},
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.log.Debug("httpproxy: forward", "client", r.RemoteAddr, "url", r.URL.Redacted(), "err", err)
			if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
				return // the client left, or the server closes
			}
			status, reason := statusFor(err)
			http.Error(w, reason, status)
		},
	}
	return t, rp
}

// forward serves an absolute-form request through the transport.
func (s *Server) forward(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Scheme {
	case "http", "https":
	default:
		http.Error(w, "unsupported scheme "+r.URL.Scheme, http.StatusBadRequest)
		return
	}
	defaultPort := "80"
	if r.URL.Scheme == "https" {
		defaultPort = "443"
	}
	if _, err := targetAddress(r.URL.Host, defaultPort); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.URL.User != nil {
		http.Error(w, "credentials in the URL are not forwarded", http.StatusBadRequest)
		return
	}
	s.forwarder.ServeHTTP(w, r)
}
