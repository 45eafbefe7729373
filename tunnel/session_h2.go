package tunnel

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2/hpack"
)

// h2Session is one HTTP/2 connection to a server.
type h2Session struct {
	slots
	d  *Dialer
	si *serverInfo
	c  *h2Conn
}

func (d *Dialer) connectH2(ctx context.Context, si *serverInfo) (*h2Session, error) {
	addr, err := d.serverAddr(ctx, si)
	if err != nil {
		return nil, fmt.Errorf("h2: %w", err)
	}
	raw, err := (&net.Dialer{Timeout: d.cfg.ConnectTimeout, KeepAlive: 30 * time.Second}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("h2: %w", err)
	}
	tlsConf := tlsConfig(ctx, si)
	tlsConf.NextProtos = []string{"h2"}
	tc := tls.Client(raw, tlsConf)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("h2: %w", err)
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		tc.Close()
		return nil, fmt.Errorf("h2: the server does not speak HTTP/2 (ALPN %q)", p)
	}
	c, err := newH2Conn(tc, d.cfg.HTTP2)
	if err != nil {
		return nil, err
	}
	return &h2Session{d: d, si: si, c: c}, nil
}

// reserve takes a slot within max and within the server's
// SETTINGS_MAX_CONCURRENT_STREAMS: a stream past that would be refused.
func (s *h2Session) reserve(max int) bool {
	if limit := s.c.peerMaxStreams.Load(); uint64(limit) < uint64(max) {
		max = int(limit)
	}
	return s.slots.reserve(max)
}

func (s *h2Session) alive() bool                                         { return s.c.alive() }
func (s *h2Session) proto() string                                       { return "h2" }
func (s *h2Session) close() error                                        { return s.c.close() }
func (s *h2Session) newConn(target string) net.Conn                      { return newTunnelConn(s.d, s, target) }
func (s *h2Session) roundTrip(req *http.Request) (*http.Response, error) { return s.c.roundTrip(req) }

// open sends the CONNECT for target. The stream's first Write follows its
// HEADERS without waiting for the answer.
func (s *h2Session) open(ctx context.Context, target string) (clientStream, error) {
	if !httpguts.ValidHostHeader(target) {
		return nil, fmt.Errorf("tunnel: invalid target %q", target)
	}
	st := newH2ClientStream(s.c)
	fields := []hpack.HeaderField{
		{Name: ":method", Value: http.MethodConnect},
		{Name: ":authority", Value: target},
		{Name: "proxy-authorization", Value: s.si.auth, Sensitive: true},
	}
	if err := s.c.openStream(st, fields, false); err != nil {
		return nil, fmt.Errorf("tunnel: h2 CONNECT: %w", err)
	}
	return st, nil
}
