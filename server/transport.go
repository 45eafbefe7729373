package server

import (
	"net/http"

	"github.com/porta443/porta/tunnel"
	"github.com/quic-go/quic-go"
)

// The QUIC settings are the tunnel's: stream caps, and windows large
// enough for one tunnel stream to fill a fast link (they grow only as data
// is in flight, so an idle connection costs no more for them).
//
// HTTP/2 offers everyone net/http's defaults, as a stock Go server does
// (DESIGN.md: before authentication porta looks stock), and an
// authenticated tunnel's stream and connection get the tunnel's windows
// and stream limit when the tunnel handler tunes them (internal/h2's
// Tuner). net/http's own server (StdHTTP2) cannot tune a stream: it
// offers everyone the tunnel's settings.

func (s *Server) http2Config() *http.HTTP2Config {
	if s.cfg.StdHTTP2 {
		return tunnel.ServerHTTP2Config()
	}
	return nil
}

func (s *Server) quicConfig() *quic.Config {
	c := tunnel.ServerQUICConfig()
	c.HandshakeIdleTimeout = s.cfg.ReadHeaderTimeout
	c.Allow0RTT = true // safe methods only: see earlyDataGuard
	return c
}
