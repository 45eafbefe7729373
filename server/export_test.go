package server

import (
	"net/http"
	"time"

	"github.com/miekg/dns"
)

// NewSiteHandler is the website New would build for cfg, for tests that
// serve it elsewhere (over plain HTTP).
func NewSiteHandler(cfg Config) (http.Handler, error) {
	cfg.setDefaults()
	return newSite(&cfg, cfg.Logger)
}

// MaintainCertificates does at now what a serving server does every hour:
// renew a self-signed certificate that is due, warn about an expiring one.
func (s *Server) MaintainCertificates(now time.Time) { s.certs.maintain(now) }

// SetACMERenewCheck makes a server made from cfg look for ACME
// certificates to renew every d instead of every 10 minutes.
func SetACMERenewCheck(cfg *Config, d time.Duration) { cfg.acmeRenewCheck = d }

// MaintainECH does at now what a serving server does every hour: rotate
// the ECH key that is due.
func (s *Server) MaintainECH(now time.Time) { s.ech.maintain(now) }

// ObserveRequests has f see every request before the server handles it,
// for tests that look at r.TLS; call it before Serve.
func (s *Server) ObserveRequests(f func(*http.Request)) {
	next := s.handler
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f(r)
		next.ServeHTTP(w, r)
	})
}

// ACMENames are the names the server gets ACME certificates for.
func (s *Server) ACMENames() []string {
	if s.certs.acme == nil {
		return nil
	}
	return s.certs.acme.names
}

// OwnsHTTPSRecord reports whether the server's DoH, serving on port,
// answers an HTTPS query for name (an FQDN) itself.
func (s *Server) OwnsHTTPSRecord(name string, port int) bool {
	s.own.serving(port, true)
	_, ok := s.own.Records(name, dns.TypeHTTPS)
	return ok
}
