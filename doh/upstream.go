package doh

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// upstream is one resolver that the Resolver forwards to.
type upstream interface {
	// exchange sends a query in wire form and returns the raw answer, which
	// carries the query's ID.
	exchange(ctx context.Context, q []byte) ([]byte, error)
	close()
	String() string
}

// newUpstream parses one upstream URL: udp://host[:53], tcp://host[:53],
// tls://host[:853] (DNS over TLS, RFC 7858) or https://host[:443]/path
// (DoH). A bare host[:port] means udp://.
func newUpstream(raw string, tlsConf *tls.Config, rt http.RoundTripper, timeout time.Duration) (upstream, error) {
	s := raw
	if !strings.Contains(s, "://") {
		s = "udp://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", raw, err)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("upstream %q: no host", raw)
	}
	if u.User != nil || (u.Scheme != "https" && (u.Path != "" || u.RawQuery != "" || u.Fragment != "")) {
		return nil, fmt.Errorf("upstream %q: only https:// upstreams take a path", raw)
	}
	withPort := func(def string) (string, error) {
		p := u.Port()
		if p == "" {
			p = def
		} else if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("upstream %q: bad port %q", raw, p)
		}
		return net.JoinHostPort(u.Hostname(), p), nil
	}
	switch u.Scheme {
	case "udp":
		addr, err := withPort("53")
		if err != nil {
			return nil, err
		}
		return newUDPUpstream(addr, timeout), nil
	case "tcp":
		addr, err := withPort("53")
		if err != nil {
			return nil, err
		}
		return newStreamUpstream("tcp://"+addr, addr, "tcp", nil, timeout), nil
	case "tls":
		addr, err := withPort("853")
		if err != nil {
			return nil, err
		}
		tc := cloneTLS(tlsConf)
		if tc.ServerName == "" {
			tc.ServerName = u.Hostname()
		}
		return newStreamUpstream("tls://"+addr, addr, "tls", tc, timeout), nil
	case "https":
		if _, err := withPort("443"); err != nil {
			return nil, err
		}
		if u.Path == "" {
			u.Path = "/dns-query"
		}
		if rt != nil {
			return &httpsUpstream{Client: Client{URL: u.String(), HTTPClient: &http.Client{Transport: rt, Timeout: timeout}}}, nil
		}
		tr := &http.Transport{
			TLSClientConfig:     cloneTLS(tlsConf),
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: timeout,
		}
		return &httpsUpstream{Client: Client{URL: u.String(), HTTPClient: &http.Client{Transport: tr, Timeout: timeout}}, tr: tr}, nil
	}
	return nil, fmt.Errorf("upstream %q: scheme must be udp, tcp, tls or https", raw)
}

func cloneTLS(c *tls.Config) *tls.Config {
	if c == nil {
		return &tls.Config{}
	}
	return c.Clone()
}

type httpsUpstream struct {
	Client
	tr *http.Transport // nil: the transport belongs to someone else
}

// exchange sends q with ID 0, as RFC 8484 §4.1 asks, and gives the answer
// q's ID.
func (u *httpsUpstream) exchange(ctx context.Context, q []byte) ([]byte, error) {
	msg := make([]byte, len(q))
	copy(msg, q)
	msg[0], msg[1] = 0, 0
	r, err := u.exchangeWire(ctx, msg)
	if err != nil {
		return nil, err
	}
	if len(r) < 12 {
		return nil, u.errorf("short answer")
	}
	r[0], r[1] = q[0], q[1]
	return r, nil
}
func (u *httpsUpstream) close() {
	if u.tr != nil {
		u.tr.CloseIdleConnections()
	}
}
func (u *httpsUpstream) String() string { return u.URL }
