package doh

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// maxIdleConns is how many idle TCP or TLS connections an upstream keeps.
const maxIdleConns = 4

// streamUpstream asks over TCP or TLS, reusing connections (RFC 7766 §6.2.1).
// Each connection carries one query at a time.
type streamUpstream struct {
	name   string
	addr   string
	client *dns.Client

	mu     sync.Mutex
	idle   []*dns.Conn
	closed bool
}

func newStreamUpstream(name, addr string, c *dns.Client) *streamUpstream {
	return &streamUpstream{name: name, addr: addr, client: c}
}

func (u *streamUpstream) exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	for {
		conn, reused := u.get()
		if conn == nil {
			var err error
			if conn, err = u.client.DialContext(ctx, u.addr); err != nil {
				return nil, fmt.Errorf("%s: %w", u.name, err)
			}
		}
		// miekg/dns takes only ctx's deadline; cancellation (Close) needs
		// the connection's deadline moved.
		stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
		r, _, err := u.client.ExchangeWithConnContext(ctx, m, conn)
		if !stop() {
			conn.Close() // its deadline is spoiled
			return nil, fmt.Errorf("%s: %w", u.name, ctx.Err())
		}
		if err == nil {
			u.put(conn)
			return r, nil
		}
		conn.Close()
		// An idle connection the server has closed fails at once: try a
		// fresh one.
		if !reused || ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", u.name, err)
		}
	}
}

func (u *streamUpstream) get() (*dns.Conn, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if n := len(u.idle); n > 0 {
		c := u.idle[n-1]
		u.idle = u.idle[:n-1]
		return c, true
	}
	return nil, false
}

func (u *streamUpstream) put(c *dns.Conn) {
	u.mu.Lock()
	if !u.closed && len(u.idle) < maxIdleConns {
		u.idle = append(u.idle, c)
		c = nil
	}
	u.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

func (u *streamUpstream) close() {
	u.mu.Lock()
	idle := u.idle
	u.idle, u.closed = nil, true
	u.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
}

func (u *streamUpstream) String() string { return u.name }
