package client

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
	"github.com/porta443/porta/internal/ech"
	"github.com/porta443/porta/tunnel"
)

// maxECHConfigLen bounds a config list given in base64 before it is
// decoded: an ECHConfigList has a 16-bit length.
const maxECHConfigLen = 4 * (2 + 65535 + 2) / 3

// newECH is the Dialer's ECH for cfg.ECH and cfg.ECHFallback: nil for
// "off"; the list given; or, for "auto", the servers' HTTPS records
// looked up through the bootstrap resolvers.
func newECH(cfg *Config, boot *bootstrap) (*tunnel.ECH, error) {
	e := &tunnel.ECH{AllowPlain: cfg.ECHFallback}
	switch cfg.ECH {
	case "off":
		return nil, nil
	case "", "auto":
		e.ConfigList = boot.lookupECH
		return e, nil
	}
	if len(cfg.ECH) > maxECHConfigLen {
		return nil, &ConfigError{Field: "ECH", Err: errors.New("too long for an ECHConfigList")}
	}
	list, err := base64.StdEncoding.DecodeString(cfg.ECH)
	if err != nil {
		return nil, &ConfigError{Field: "ECH", Err: errors.New("want auto, off, or an ECHConfigList in base64 (porta ech-config prints it)")}
	}
	if err := ech.CheckList(list); err != nil {
		return nil, &ConfigError{Field: "ECH", Err: fmt.Errorf("want auto, off, or an ECHConfigList in base64 (porta ech-config prints it): %w", err)}
	}
	e.ConfigList = func(context.Context, string, string) ([]byte, error) { return list, nil }
	return e, nil
}

// lookupECH asks the bootstrap resolvers for the HTTPS record (RFC 9460)
// of a server's host, at _PORT._https.HOST for a port other than 443, and
// returns the ECH config list of its first service record that has one
// crypto/tls can use; nil if none has. A server given by its address has
// no record to look up.
func (b *bootstrap) lookupECH(ctx context.Context, host, port string) ([]byte, error) {
	if _, err := netip.ParseAddr(host); err == nil {
		return nil, nil
	}
	key := dns.CanonicalName(host)
	b.mu.Lock()
	b.inflight[key]++
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		if b.inflight[key]--; b.inflight[key] == 0 {
			delete(b.inflight, key)
		}
		b.mu.Unlock()
	}()
	name := key
	if port != "443" {
		name = "_" + port + "._https." + key
	}
	resp, err := b.exchange(ctx, name, dns.TypeHTTPS)
	if err != nil {
		return nil, err
	}
	var records []*dns.HTTPS
	for _, rr := range resp.Answer {
		if h, ok := rr.(*dns.HTTPS); ok && h.Priority > 0 { // 0: AliasMode, which has no parameters
			records = append(records, h)
		}
	}
	slices.SortStableFunc(records, func(a, b *dns.HTTPS) int { return int(a.Priority) - int(b.Priority) })
	for _, h := range records {
		for _, kv := range h.Value {
			if c, ok := kv.(*dns.SVCBECHConfig); ok && ech.CheckList(c.ECH) == nil {
				return c.ECH, nil
			}
		}
	}
	return nil, nil
}

// exchange sends a query for name and qtype to the bootstrap resolvers in
// turn, over UDP and again over TCP when the answer is truncated, and
// returns the first answer that is not a failure.
func (b *bootstrap) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	servers, err := b.servers()
	if err != nil {
		return nil, err
	}
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.SetEdns0(1232, false)
	var errs []error
	for _, addr := range servers {
		resp, _, err := (&dns.Client{Net: "udp", UDPSize: 1232, Timeout: bootstrapTimeout}).ExchangeContext(ctx, q, addr)
		if err == nil && resp.Truncated {
			resp, _, err = (&dns.Client{Net: "tcp", Timeout: bootstrapTimeout}).ExchangeContext(ctx, q, addr)
		}
		switch {
		case err != nil:
			errs = append(errs, err)
		case resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError:
			errs = append(errs, fmt.Errorf("%s: %s", addr, dns.RcodeToString[resp.Rcode]))
		default:
			return resp, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("HTTPS record of %s: %w", strings.TrimSuffix(name, "."), errors.Join(errs...))
}

// answerHTTPS answers SERVFAIL to an HTTPS query for a server's name
// (or _PORT._https. and the name) that arrives while the client is
// looking that record up itself: the system's resolver is this client,
// and passing the query on would wait for the tunnel that waits for it.
// Any other HTTPS query gets nil: it goes to the server's DoH, which
// answers its own names.
func (b *bootstrap) answerHTTPS(q *dns.Msg, name string) *dns.Msg {
	labels := dns.SplitDomainName(name)
	if len(labels) > 2 && strings.HasPrefix(labels[0], "_") && labels[1] == "_https" {
		name = dns.Fqdn(strings.Join(labels[2:], "."))
	}
	b.mu.Lock()
	looping := b.hosts[name] && b.inflight[name] > 0
	b.mu.Unlock()
	if !looping {
		return nil
	}
	return new(dns.Msg).SetRcode(q, dns.RcodeServerFailure)
}
