package doh

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// LookupNetIP looks up host's addresses through the Resolver and its cache,
// like net.Resolver's method of that name: network is "ip" (both families,
// IPv4 first), "ip4" or "ip6". An IP literal is returned as it is. A name
// with no addresses is a *net.DNSError with IsNotFound set.
func (r *Resolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	var types []uint16
	switch network {
	case "ip":
		types = []uint16{dns.TypeA, dns.TypeAAAA}
	case "ip4":
		types = []uint16{dns.TypeA}
	case "ip6":
		types = []uint16{dns.TypeAAAA}
	default:
		return nil, fmt.Errorf("doh: lookup %s: unknown network %q", host, network)
	}
	if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")); err == nil {
		if (network == "ip4" && !ip.Unmap().Is4()) || (network == "ip6" && !ip.Is6()) {
			return nil, &net.DNSError{Err: "no suitable address", Name: host, IsNotFound: true}
		}
		return []netip.Addr{ip}, nil
	}
	if _, ok := dns.IsDomainName(host); !ok || host == "" {
		return nil, &net.DNSError{Err: "invalid domain name", Name: host, IsNotFound: true}
	}
	if isLocalhost(host) {
		return localhostAddrs(network), nil
	}
	type result struct {
		addrs []netip.Addr
		err   error
	}
	results := make([]result, len(types))
	done := make(chan struct{}, len(types))
	for i, t := range types {
		go func() { // ends when Exchange returns, which ctx and the Resolver's timeout bound
			results[i].addrs, results[i].err = r.lookup(ctx, host, t)
			done <- struct{}{}
		}()
	}
	for range types {
		<-done
	}
	var addrs []netip.Addr
	var firstErr error
	for _, res := range results {
		addrs = append(addrs, res.addrs...)
		if res.err != nil && firstErr == nil {
			firstErr = res.err
		}
	}
	if len(addrs) > 0 {
		return addrs, nil
	}
	if firstErr == nil {
		firstErr = &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return nil, firstErr
}

func (r *Resolver) lookup(ctx context.Context, host string, qtype uint16) ([]netip.Addr, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(host), qtype)
	resp, err := r.Exchange(ctx, m)
	if err != nil {
		return nil, &net.DNSError{Err: err.Error(), Name: host, IsTimeout: ctx.Err() != nil}
	}
	switch resp.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	default:
		return nil, &net.DNSError{Err: "server misbehaving: " + dns.RcodeToString[resp.Rcode], Name: host, IsTemporary: true}
	}
	var addrs []netip.Addr
	for _, rr := range resp.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			if a, ok := netip.AddrFromSlice(rr.A.To4()); ok {
				addrs = append(addrs, a)
			}
		case *dns.AAAA:
			if a, ok := netip.AddrFromSlice(rr.AAAA.To16()); ok {
				addrs = append(addrs, a)
			}
		}
	}
	return addrs, nil
}

// isLocalhost reports whether host is "localhost" or a name below it, which
// RFC 6761 §6.3 says always means the loopback address and is never asked
// of a DNS server (so a tunnel's egress check sees it for what it is).
func isLocalhost(host string) bool {
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	return name == "localhost" || strings.HasSuffix(name, ".localhost")
}

func localhostAddrs(network string) []netip.Addr {
	v4, v6 := netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()
	switch network {
	case "ip4":
		return []netip.Addr{v4}
	case "ip6":
		return []netip.Addr{v6}
	}
	return []netip.Addr{v4, v6}
}
