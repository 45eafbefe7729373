package tunnel

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// blockingResolver answers only when released, so a test can look at the
// server while it is still resolving a target (before any 200 can exist).
type blockingResolver struct {
	called  chan string
	release chan struct{}
}

func (r *blockingResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.called <- host
	select {
	case <-r.release:
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// countingListener counts the bytes the server reads off its connections.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConnT{Conn: c, n: l.n}, nil
}

type countingConnT struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConnT) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

type countingPacketConn struct {
	net.PacketConn
	n *atomic.Int64
}

func (c countingPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, a, err := c.PacketConn.ReadFrom(p)
	c.n.Add(int64(n))
	return n, a, err
}

// TestFastOpen: over a warm tunnel DialContext sends nothing, and the
// first Write reaches the server together with the CONNECT, while the
// server is still resolving the target — the client does not wait for the
// 200, so a new connection costs one round trip.
func TestFastOpen(t *testing.T) {
	for _, mode := range dialerModes {
		t.Run(mode, func(t *testing.T) {
			res := &blockingResolver{called: make(chan string, 1), release: make(chan struct{})}
			var got atomic.Int64
			ts := newTunnelServerOpts(t, HandlerConfig{Resolver: res, AllowPrivate: true}, serverOpts{
				wrapTCP: func(l net.Listener) net.Listener { return countingListener{l, &got} },
				wrapUDP: func(c net.PacketConn) net.PacketConn { return countingPacketConn{c, &got} },
			})
			target := echoTarget(t)
			d := newDialer(t, ts, mode, testUser, testToken)

			warm, err := d.Dial("tcp", target) // by address: no resolver
			if err != nil {
				t.Fatal(err)
			}
			warm.Write([]byte("w"))
			if _, err := io.ReadFull(warm, make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			warm.Close()
			waitIdle(t, ts.h) // the server has had the warm-up's last frames
			before := got.Load()

			c, err := d.DialContext(context.Background(), "tcp", "slow.example:"+itoa(portOf(target)))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			time.Sleep(50 * time.Millisecond)
			if n := got.Load() - before; n > 64 && transport(mode) == "h2" {
				t.Fatalf("DialContext sent %d bytes before the first Write", n)
			}
			payload := make([]byte, 4096)
			rand.Read(payload)
			if _, err := c.Write(payload); err != nil {
				t.Fatal(err)
			}
			if host := <-res.called; host != "slow.example" {
				t.Fatalf("resolving %q", host)
			}
			waitFor(t, "the first write to reach the server before the 200", 10*time.Second, func() bool {
				return got.Load()-before >= int64(len(payload))
			})
			close(res.release)
			echo := make([]byte, len(payload))
			if _, err := io.ReadFull(c, echo); err != nil || !bytes.Equal(echo, payload) {
				t.Fatalf("echo: %v", err)
			}
		})
	}
}
