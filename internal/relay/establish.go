package relay

import (
	"context"
	"net"
)

// DialFunc opens a connection to a target named by host:port, for the local
// proxies. The host may be a domain name, which is passed through
// unresolved: names are resolved on the far side of the tunnel, never
// locally.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// Establisher is implemented by a connection that its dialer returned
// before the target answered (a fast-open tunnel, which sends its CONNECT
// with the first bytes). Established waits for the target's answer and
// returns nil once the target is connected, or the reason it is not.
type Establisher interface {
	Established(ctx context.Context) error
}

// Established waits for c's target if c is an Establisher; any other
// connection is taken as established already.
func Established(ctx context.Context, c net.Conn) error {
	if e, ok := c.(Establisher); ok {
		return e.Established(ctx)
	}
	return nil
}
