package server

import (
	"net/http"

	"github.com/porta443/porta/tunnel"
	"github.com/quic-go/quic-go"
)

// The HTTP/2 and QUIC settings are the tunnel's: stream caps, and windows
// large enough for one tunnel stream to fill a fast link (they grow only as
// data is in flight, so an idle connection costs no more for them).

func (s *Server) http2Config() *http.HTTP2Config {
	return tunnel.ServerHTTP2Config()
}

func (s *Server) quicConfig() *quic.Config {
	c := tunnel.ServerQUICConfig()
	c.HandshakeIdleTimeout = s.cfg.readHeaderTimeout()
	c.Allow0RTT = true // safe methods only: see earlyDataGuard
	return c
}
