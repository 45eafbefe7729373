package tunnel

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/porta443/porta/internal/h2"
	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2/hpack"
)

// h2Session is one HTTP/2 connection to a server, on porta's own client
// (internal/h2).
type h2Session struct {
	slots
	d  *Dialer
	si *serverInfo
	c  *h2.ClientConn
}

// connectH2 connects to si over HTTP/2, with internal/h2 or, with
// StdHTTP2, net/http's client.
func (d *Dialer) connectH2(ctx context.Context, si *serverInfo) (session, error) {
	if d.cfg.StdHTTP2 {
		return asSession(d.connectStd(ctx, si))
	}
	tc, err := d.dialTLS(ctx, si)
	if err != nil {
		return nil, err
	}
	c, err := h2.NewClientConn(tc, d.cfg.HTTP2)
	if err != nil {
		return nil, err
	}
	return &h2Session{d: d, si: si, c: c}, nil
}

// dialTLS opens a TLS connection to si that negotiated "h2".
func (d *Dialer) dialTLS(ctx context.Context, si *serverInfo) (*tls.Conn, error) {
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
	return tc, nil
}

// reserve takes a slot within max and within the server's
// SETTINGS_MAX_CONCURRENT_STREAMS: a stream past that would be refused.
func (s *h2Session) reserve(max int) bool {
	if limit := s.c.MaxConcurrentStreams(); uint64(limit) < uint64(max) {
		max = int(limit)
	}
	return s.slots.reserve(max)
}

func (s *h2Session) alive() bool                                         { return s.c.CanTakeNewStream() }
func (s *h2Session) proto() string                                       { return "h2" }
func (s *h2Session) close() error                                        { return s.c.Close() }
func (s *h2Session) newConn(target string) net.Conn                      { return newTunnelConn(s.d, s, target) }
func (s *h2Session) roundTrip(req *http.Request) (*http.Response, error) { return s.c.RoundTrip(req) }

// open sends the CONNECT for target. The stream's first Write follows its
// HEADERS without waiting for the answer.
func (s *h2Session) open(ctx context.Context, target string) (clientStream, error) {
	if !httpguts.ValidHostHeader(target) {
		return nil, fmt.Errorf("tunnel: invalid target %q", target)
	}
	st, err := s.c.NewStream([]hpack.HeaderField{
		{Name: ":method", Value: http.MethodConnect},
		{Name: ":authority", Value: target},
		{Name: "proxy-authorization", Value: s.si.auth, Sensitive: true},
	}, false)
	if err != nil {
		return nil, fmt.Errorf("tunnel: h2 CONNECT: %w", err)
	}
	st.PadFirst() // the server pads its side likewise: see internal/h2's padding
	return h2ClientStream{st}, nil
}

// h2ClientStream is a CONNECT stream on porta's own HTTP/2 client.
type h2ClientStream struct{ *h2.ClientStream }

func (st h2ClientStream) response(ctx context.Context) error {
	status, h, err := st.AwaitResponse(ctx)
	if err != nil {
		return connectErr(ctx, err)
	}
	return refusal(status, h)
}

// Write fails with the refusal when the server refused the CONNECT (and
// then reset the stream), as a Read does.
func (st h2ClientStream) Write(p []byte) (int, error) {
	n, err := st.ClientStream.Write(p)
	if err != nil {
		if status, h, ok := st.Response(); ok {
			if rerr := refusal(status, h); rerr != nil {
				err = rerr
			}
		}
	}
	return n, err
}
