package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Resolver resolves target names. *net.Resolver satisfies it, and so does
// porta's caching DoH resolver.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Errors from dialing a target; the handler maps them to RFC 9209
// Proxy-Status error types for authenticated clients.
var (
	ErrProhibited = errors.New("tunnel: destination address is not allowed")
	ErrBadTarget  = errors.New("tunnel: bad target address")
)

// dnsError wraps a resolution failure.
type dnsError struct{ err error }

func (e *dnsError) Error() string { return "tunnel: resolving target: " + e.err.Error() }
func (e *dnsError) Unwrap() error { return e.err }

// prohibitedPrefixes are refused on top of what netip.Addr's predicates
// catch: this network, shared address space, IETF protocol assignments,
// benchmarking, reserved and broadcast, and local-use NAT64.
func prohibitedPrefixes() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8",
		"169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16",
		"192.0.0.0/24", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
		"::/128", "::1/128", "fe80::/10", "fc00::/7", "ff00::/8",
		"64:ff9b:1::/48",
	} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

// egress decides which addresses a tunnel may reach and dials them.
type egress struct {
	resolver     Resolver
	allowPrivate bool
	dialTimeout  time.Duration
	prefixes     []netip.Prefix
	own          func() []netip.Addr // the server's own addresses
}

// allowed reports whether the tunnel may connect to a. IPv4-mapped IPv6
// addresses are judged as the IPv4 address they carry.
func (e *egress) allowed(a netip.Addr, local netip.Addr) bool {
	if e.allowPrivate {
		return true
	}
	a = a.Unmap()
	if !a.IsValid() || a.IsUnspecified() || a.IsLoopback() || a.IsPrivate() ||
		a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsMulticast() ||
		a.IsInterfaceLocalMulticast() {
		return false
	}
	for _, p := range e.prefixes {
		if p.Contains(a) {
			return false
		}
	}
	if local.IsValid() && local.Unmap() == a {
		return false
	}
	if e.own != nil {
		for _, o := range e.own() {
			if o.Unmap() == a {
				return false
			}
		}
	}
	return true
}

// resolve returns the addresses of hostport that a tunnel may reach, in
// the resolver's order. local is the server address the client came in on
// (refused as a target like every other address of the server).
func (e *egress) resolve(ctx context.Context, hostport string, local netip.Addr) ([]netip.AddrPort, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadTarget, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 || host == "" {
		return nil, fmt.Errorf("%w: %q", ErrBadTarget, hostport)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		r := e.resolver
		if r == nil {
			r = net.DefaultResolver
		}
		rctx, cancel := context.WithTimeout(ctx, e.dialTimeout)
		addrs, err = r.LookupNetIP(rctx, "ip", host)
		cancel()
		if err != nil {
			return nil, &dnsError{err}
		}
		if len(addrs) == 0 {
			return nil, &dnsError{errors.New("no addresses")}
		}
	}
	var out []netip.AddrPort
	for _, a := range addrs {
		if a.Zone() == "" && e.allowed(a, local) {
			out = append(out, netip.AddrPortFrom(a.Unmap(), uint16(port)))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrProhibited, host)
	}
	return out, nil
}

// dial resolves hostport and connects to the first allowed address that
// answers.
func (e *egress) dial(ctx context.Context, hostport string, local netip.Addr) (*net.TCPConn, error) {
	addrs, err := e.resolve(ctx, hostport, local)
	if err != nil {
		return nil, err
	}
	var lastErr error
	d := net.Dialer{Timeout: e.dialTimeout}
	for _, a := range addrs {
		c, err := d.DialContext(ctx, "tcp", a.String())
		if err == nil {
			return c.(*net.TCPConn), nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("tunnel: dialing %s: %w", hostport, lastErr)
}

// udpReadBuffer is the receive buffer asked for a flow's target socket.
const udpReadBuffer = 1 << 20

// dialUDP resolves hostport and opens a connected UDP socket to its first
// allowed address (UDP has no answer to wait for).
func (e *egress) dialUDP(ctx context.Context, hostport string, local netip.Addr) (*net.UDPConn, error) {
	addrs, err := e.resolve(ctx, hostport, local)
	if err != nil {
		return nil, err
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addrs[0]))
	if err != nil {
		return nil, fmt.Errorf("tunnel: dialing %s: %w", hostport, err)
	}
	// Room for a target's burst while the flow writes the last one to
	// the client; best effort (the kernel caps it at net.core.rmem_max).
	c.SetReadBuffer(udpReadBuffer)
	return c, nil
}

// interfaceAddrs lists the addresses of this machine's interfaces.
func interfaceAddrs() []netip.Addr {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range as {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out
}
