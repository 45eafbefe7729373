package server

import (
	"log/slog"
	"net/http"
	"time"
)

// NewSiteHandler is the website New would build for cfg, for tests that
// serve it elsewhere (over plain HTTP).
func NewSiteHandler(cfg Config) (http.Handler, error) {
	return newSite(&cfg, slog.New(slog.DiscardHandler))
}

// MaintainCertificates does at now what a serving server does every hour:
// renew a self-signed certificate that is due, warn about an expiring one.
func (s *Server) MaintainCertificates(now time.Time) { s.certs.maintain(now) }

// SetACMERenewCheck makes a server made from cfg look for ACME
// certificates to renew every d instead of every 10 minutes.
func SetACMERenewCheck(cfg *Config, d time.Duration) { cfg.acmeRenewCheck = d }
