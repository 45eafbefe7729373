package server

import (
	"net/http"
	"time"

	"github.com/quic-go/quic-go"
)

// Stream limits and flow-control windows. A tunnel stream must be able to
// fill a fast link on its own, so the per-stream windows are far above
// the libraries' defaults; the windows grow only as data is in flight, so an
// idle connection costs no more for it.
const (
	maxStreamsPerConn   = 1000
	streamWindow        = 4 << 20
	connWindow          = 16 << 20
	http2MaxFrame       = 1 << 20
	quicHandshakeIdle   = 10 * time.Second
	quicMaxIdleTimeout  = 60 * time.Second
	quicInitialStreamWn = 512 << 10
)

func (s *Server) http2Config() *http.HTTP2Config {
	return &http.HTTP2Config{
		MaxConcurrentStreams:          maxStreamsPerConn,
		MaxReadFrameSize:              http2MaxFrame,
		MaxReceiveBufferPerConnection: connWindow,
		MaxReceiveBufferPerStream:     streamWindow,
		SendPingTimeout:               30 * time.Second,
		PingTimeout:                   15 * time.Second,
	}
}

func (s *Server) quicConfig() *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:           min(quicHandshakeIdle, s.cfg.readHeaderTimeout()),
		MaxIdleTimeout:                 quicMaxIdleTimeout,
		MaxIncomingStreams:             maxStreamsPerConn,
		InitialStreamReceiveWindow:     quicInitialStreamWn,
		MaxStreamReceiveWindow:         streamWindow,
		InitialConnectionReceiveWindow: quicInitialStreamWn * 2,
		MaxConnectionReceiveWindow:     connWindow,
		Allow0RTT:                      true,
	}
}
