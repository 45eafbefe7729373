package doh

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// maxIdleConns is how many idle TCP or TLS connections an upstream keeps.
const maxIdleConns = 4

// streamUpstream asks over TCP or TLS, reusing connections (RFC 7766 §6.2.1).
// Each connection carries one query at a time.
type streamUpstream struct {
	name    string
	addr    string
	network string      // "tcp" or "tls"
	tls     *tls.Config // for "tls"
	timeout time.Duration

	mu     sync.Mutex
	idle   []net.Conn
	closed bool
}

func newStreamUpstream(name, addr, network string, tlsConf *tls.Config, timeout time.Duration) *streamUpstream {
	return &streamUpstream{name: name, addr: addr, network: network, tls: tlsConf, timeout: timeout}
}

func (u *streamUpstream) exchange(ctx context.Context, q []byte) ([]byte, error) {
	for {
		conn, reused := u.get()
		if conn == nil {
			var err error
			if conn, err = u.dial(ctx); err != nil {
				return nil, fmt.Errorf("%s: %w", u.name, err)
			}
		}
		r, err := u.roundTrip(ctx, conn, q)
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

func (u *streamUpstream) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, u.timeout)
	defer cancel()
	if u.network == "tls" {
		d := tls.Dialer{Config: u.tls}
		return d.DialContext(ctx, "tcp", u.addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", u.addr)
}

// roundTrip writes q with its length prefix and reads one answer, which
// must carry q's ID.
func (u *streamUpstream) roundTrip(ctx context.Context, conn net.Conn, q []byte) ([]byte, error) {
	deadline := time.Now().Add(u.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	msg := make([]byte, 2+len(q))
	binary.BigEndian.PutUint16(msg, uint16(len(q)))
	copy(msg[2:], q)
	if _, err := conn.Write(msg); err != nil {
		return nil, err
	}
	var n [2]byte
	if _, err := io.ReadFull(conn, n[:]); err != nil {
		return nil, err
	}
	r := make([]byte, binary.BigEndian.Uint16(n[:]))
	if _, err := io.ReadFull(conn, r); err != nil {
		return nil, err
	}
	if len(r) < 12 || r[0] != q[0] || r[1] != q[1] {
		return nil, fmt.Errorf("answer with the wrong ID")
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return r, nil
}

func (u *streamUpstream) get() (net.Conn, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if n := len(u.idle); n > 0 {
		c := u.idle[n-1]
		u.idle = u.idle[:n-1]
		return c, true
	}
	return nil, false
}

func (u *streamUpstream) put(c net.Conn) {
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
