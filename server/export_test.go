package server

import (
	"log/slog"
	"net/http"
)

// NewSiteHandler is the website New would build for cfg, for tests that
// serve it elsewhere (over plain HTTP).
func NewSiteHandler(cfg Config) (http.Handler, error) {
	return newSite(&cfg, slog.New(slog.DiscardHandler))
}
