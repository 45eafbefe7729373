package tunnel

import (
	"context"
	"fmt"
	"net"
	"net/netip"
)

// serverAddr resolves si's host with the configured Resolver and returns
// an ip:port to dial; an IP literal is used as it is.
func (d *Dialer) serverAddr(ctx context.Context, si *serverInfo) (string, error) {
	host, port, err := net.SplitHostPort(si.addr)
	if err != nil {
		return "", err
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return si.addr, nil
	}
	r := d.cfg.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return "", fmt.Errorf("resolving %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return "", fmt.Errorf("resolving %s: no addresses", host)
	}
	return net.JoinHostPort(addrs[0].Unmap().String(), port), nil
}
