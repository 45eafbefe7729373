package tunnel

import (
	"context"
	"io"
	"net/netip"
	"sync/atomic"
	"testing"
)

type countingResolver struct {
	Resolver
	asked atomic.Int64
}

func (c *countingResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	c.asked.Add(1)
	return c.Resolver.LookupNetIP(ctx, network, host)
}

// TestDialerResolvesServersWithItsResolver: a server named by a host name
// is resolved through DialerConfig.Resolver (porta's client uses this to
// keep its own DNS resolver out of the loop), on h2 and h3.
func TestDialerResolvesServersWithItsResolver(t *testing.T) {
	for _, mode := range dialerModes {
		t.Run(mode, func(t *testing.T) {
			ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
			res := &countingResolver{Resolver: mapResolver{"porta-server.test": {netip.MustParseAddr("127.0.0.1")}}}
			d, err := NewDialer(withMode(mode, DialerConfig{
				Servers:  []string{serverURL("porta-server.test:" + itoa(portOf(ts.addr)))},
				Pin:      pinOf(ts),
				Resolver: res,
			}))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			c, err := d.DialContext(context.Background(), "tcp", echoTarget(t))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
				t.Fatalf("echo: %q %v", buf, err)
			}
			if res.asked.Load() == 0 {
				t.Fatal("the server's name was not resolved through the Resolver")
			}
		})
	}
}
