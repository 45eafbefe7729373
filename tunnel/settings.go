package tunnel

import (
	"net/http"
	"time"

	"github.com/porta443/porta/internal/h2"
	"github.com/quic-go/quic-go"
)

// The transport settings below are what one tunnel stream needs to fill a
// fast link. Go's defaults (1 MiB HTTP/2 windows, 16 KiB frames) hold a
// single HTTP/2 stream to roughly half of what the link and TLS allow.

// ServerHTTP2Config is the HTTP/2 configuration porta's server uses for its
// TCP http.Server (Server.HTTP2). The receive windows bound what a client
// can make the server buffer: 4 MiB per stream, 16 MiB per connection.
func ServerHTTP2Config() *http.HTTP2Config {
	return &http.HTTP2Config{
		MaxConcurrentStreams:          1024,
		MaxReadFrameSize:              1 << 20,
		MaxReceiveBufferPerStream:     4 << 20,
		MaxReceiveBufferPerConnection: 16 << 20,
		SendPingTimeout:               30 * time.Second,
		PingTimeout:                   15 * time.Second,
	}
}

// ServerHTTP2Tuning is what an authenticated tunnel's stream and
// connection are given on internal/h2's HTTP/2 server, which offers
// everyone else net/http's defaults: ServerHTTP2Config's windows, stream
// limit and health check, and padding of the stream's first frames.
func ServerHTTP2Tuning() h2.Tuning {
	c := ServerHTTP2Config()
	return h2.Tuning{
		StreamWindow:    int32(c.MaxReceiveBufferPerStream),
		ConnWindow:      int32(c.MaxReceiveBufferPerConnection),
		MaxStreams:      uint32(c.MaxConcurrentStreams),
		SendPingTimeout: c.SendPingTimeout,
		PingTimeout:     c.PingTimeout,
		Pad:             true,
	}
}

// ServerQUICConfig is the quic.Config porta's server uses for its
// http3.Server (Server.QUICConfig). quic-go grows windows on demand up to
// these maxima.
func ServerQUICConfig() *quic.Config {
	return &quic.Config{
		MaxIncomingStreams:             1024,
		InitialStreamReceiveWindow:     1 << 20,
		MaxStreamReceiveWindow:         8 << 20,
		InitialConnectionReceiveWindow: 2 << 20,
		MaxConnectionReceiveWindow:     32 << 20,
		MaxIdleTimeout:                 60 * time.Second,
		KeepAlivePeriod:                0,    // the client keeps the connection alive
		EnableDatagrams:                true, // HTTP Datagrams for CONNECT-UDP (RFC 9297)
	}
}

// ClientHTTP2Config is the HTTP/2 configuration a Dialer uses unless told
// otherwise: large receive windows (downloads are what a user waits for)
// and a PING after 15 s without frames as the health check.
func ClientHTTP2Config() *http.HTTP2Config {
	return &http.HTTP2Config{
		MaxReadFrameSize:              1 << 20,
		MaxReceiveBufferPerStream:     16 << 20,
		MaxReceiveBufferPerConnection: 64 << 20,
		SendPingTimeout:               15 * time.Second,
		PingTimeout:                   10 * time.Second,
	}
}

// ClientQUICConfig is the quic.Config a Dialer uses unless told otherwise.
func ClientQUICConfig() *quic.Config {
	return &quic.Config{
		MaxIncomingStreams:             -1, // the server opens none
		InitialStreamReceiveWindow:     1 << 20,
		MaxStreamReceiveWindow:         16 << 20,
		InitialConnectionReceiveWindow: 2 << 20,
		MaxConnectionReceiveWindow:     64 << 20,
		MaxIdleTimeout:                 45 * time.Second,
		KeepAlivePeriod:                15 * time.Second,
		EnableDatagrams:                true, // HTTP Datagrams for CONNECT-UDP (RFC 9297)
	}
}
