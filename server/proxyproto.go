package server

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/porta443/porta/internal/metrics"
)

// proxyFrom parses Config.ProxyFrom: CIDR prefixes or single addresses.
func proxyFrom(cfg *Config) ([]netip.Prefix, error) {
	switch {
	case !cfg.ProxyProtocol && len(cfg.ProxyFrom) > 0:
		return nil, &ConfigError{Field: "ProxyFrom", Err: errors.New("only with the PROXY protocol on")}
	case cfg.ProxyProtocol && len(cfg.ProxyFrom) == 0:
		return nil, &ConfigError{Field: "ProxyFrom", Err: errors.New("required with the PROXY protocol: the load balancers' addresses, as CIDR prefixes")}
	}
	var out []netip.Prefix
	for _, s := range cfg.ProxyFrom {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, &ConfigError{Field: "ProxyFrom", Err: fmt.Errorf("%q: want a CIDR prefix such as 10.0.0.0/8, or an IP address", s)}
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// proxyListener reads the PROXY protocol header (v1 or v2) of every
// connection from one of from, which must send one, and refuses a header
// from anyone else, whose connections are served as they come. A
// connection's RemoteAddr is then the client's address from the header.
// The header is read by the connection's first Read (net/http's
// connection goroutine), never in Accept, and must arrive within timeout.
func proxyListener(ln net.Listener, from []netip.Prefix, timeout time.Duration) net.Listener {
	return &proxyproto.Listener{
		Listener:          ln,
		ReadHeaderTimeout: timeout,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			if ap, err := netip.ParseAddrPort(o.Upstream.String()); err == nil && trusted(from, ap.Addr()) {
				return proxyproto.REQUIRE, nil
			}
			return proxyproto.REJECT, nil
		},
	}
}

func trusted(from []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range from {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// proxiedListener gives the connections of a proxyproto.Listener back
// what the layers above expect of a TCP connection: half-close and
// SetLinger, which go to the connection beneath the header.
type proxiedListener struct{ net.Listener }

func (l proxiedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if pc, ok := c.(*proxyproto.Conn); ok {
		return proxiedConn{pc}, nil
	}
	return c, nil
}

type proxiedConn struct{ *proxyproto.Conn }

func (c proxiedConn) CloseWrite() error {
	if cw, ok := c.Raw().(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("server: connection cannot half-close")
}

func (c proxiedConn) SetLinger(sec int) error {
	if l, ok := c.Raw().(interface{ SetLinger(int) error }); ok {
		return l.SetLinger(sec)
	}
	return errors.New("server: connection has no SetLinger")
}

// tcpListener is the stack beneath TLS: every connection counted, then
// the PROXY protocol header read when it is on.
func (s *Server) tcpListener(ln net.Listener) net.Listener {
	ln = metrics.Listener{Listener: ln, Counts: &s.counts.tcp}
	if s.cfg.ProxyProtocol {
		ln = proxiedListener{proxyListener(ln, s.proxyFrom, s.cfg.ReadHeaderTimeout)}
	}
	return ln
}
