package client

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// bootstrap resolves the servers' own host names without the tunnel, and
// answers local DNS queries for them. When the system's DNS points at this
// client, the system's resolver would ask the client for the server's
// name, and the client would need the tunnel to the server to answer: a
// loop. bootstrap breaks it: a query for a server name that arrives while
// the client itself is resolving that name is answered from the addresses
// last known to work (or SERVFAIL), never passed on.
type bootstrap struct {
	hosts    map[string]bool // the servers' names, as canonical FQDNs
	resolver *net.Resolver
	targets  []string // the resolvers' ip:port; none: the system's

	mu       sync.Mutex
	known    map[string][]netip.Addr // last good addresses per host
	inflight map[string]int
}

// newBootstrap prepares resolving the host names in servers through the
// resolvers at addrs (IP or IP:port, UDP and TCP), or the system's if none.
func newBootstrap(servers []string, addrs []string) (*bootstrap, error) {
	b := &bootstrap{hosts: map[string]bool{}, known: map[string][]netip.Addr{}, inflight: map[string]int{}}
	for _, s := range servers {
		if u, err := url.Parse(s); err == nil && u.Hostname() != "" {
			if _, err := netip.ParseAddr(u.Hostname()); err != nil {
				b.hosts[dns.CanonicalName(u.Hostname())] = true
			}
		}
	}
	if len(addrs) == 0 {
		b.resolver = net.DefaultResolver
		return b, nil
	}
	for _, a := range addrs {
		if ip, err := netip.ParseAddr(a); err == nil {
			a = netip.AddrPortFrom(ip, 53).String()
		}
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			return nil, &ConfigError{Field: "Bootstrap", Value: a, Err: errors.New("want IP or IP:port")}
		}
		b.targets = append(b.targets, ap.String())
	}
	var next atomic.Uint32
	b.resolver = &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			target := b.targets[int(next.Add(1))%len(b.targets)]
			return (&net.Dialer{Timeout: bootstrapTimeout}).DialContext(ctx, network, target)
		},
	}
	return b, nil
}

// bootstrapTimeout bounds dialing one bootstrap resolver, and one query
// to it.
const bootstrapTimeout = 2 * time.Second

// servers are the bootstrap resolvers' ip:port: those given, or the
// nameservers in /etc/resolv.conf, read each time since they change as
// the laptop moves between networks.
func (b *bootstrap) servers() ([]string, error) {
	if len(b.targets) > 0 {
		return b.targets, nil
	}
	cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range cc.Servers {
		out = append(out, net.JoinHostPort(s, cc.Port))
	}
	if len(out) == 0 {
		return nil, errors.New("no nameserver in /etc/resolv.conf")
	}
	return out, nil
}

// LookupNetIP resolves a server's name for the tunnel. When the resolvers
// fail, the addresses that worked last time are used.
func (b *bootstrap) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	key := dns.CanonicalName(host)
	b.mu.Lock()
	b.inflight[key]++
	b.mu.Unlock()
	addrs, err := b.resolver.LookupNetIP(ctx, network, host)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.inflight[key]--; b.inflight[key] == 0 {
		delete(b.inflight, key)
	}
	if err == nil && len(addrs) > 0 {
		b.known[key] = addrs
		return addrs, nil
	}
	if known := b.known[key]; len(known) > 0 {
		return known, nil
	}
	return nil, err
}

// answer answers an A or AAAA query for a server's name, or returns nil
// for any other query.
func (b *bootstrap) answer(ctx context.Context, q *dns.Msg) *dns.Msg {
	question := q.Question[0]
	host := dns.CanonicalName(question.Name)
	if question.Qtype == dns.TypeHTTPS {
		return b.answerHTTPS(q, host)
	}
	if !b.hosts[host] || (question.Qtype != dns.TypeA && question.Qtype != dns.TypeAAAA) {
		return nil
	}
	b.mu.Lock()
	looping, addrs := b.inflight[host] > 0, b.known[host]
	b.mu.Unlock()
	if !looping && len(addrs) == 0 {
		addrs, _ = b.LookupNetIP(ctx, "ip", host)
	}
	m := new(dns.Msg)
	if len(addrs) == 0 {
		return m.SetRcode(q, dns.RcodeServerFailure)
	}
	return Records{host: addrs}.answer(q)
}
