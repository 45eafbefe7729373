package tunnel

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// freezer is a TCP proxy whose connections can be frozen: bytes stop
// flowing both ways but nothing is closed, as when a laptop sleeps or its
// network changes under an open connection. Connections made later flow.
type freezer struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	live   []*frozenPair
	conns  []net.Conn
}

type frozenPair struct {
	gate chan struct{} // closed: frozen
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p := &frozenPair{gate: make(chan struct{})}
			f.mu.Lock()
			f.live = append(f.live, p)
			f.conns = append(f.conns, c, u)
			f.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				defer dst.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					select {
					case <-p.gate:
						io.Copy(io.Discard, src) // frozen: swallow until closed
						return
					default:
					}
					if n > 0 {
						if _, werr := dst.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}
			wg.Go(func() { pipe(u, c) })
			wg.Go(func() { pipe(c, u) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		wg.Wait()
	})
	return f
}

func (f *freezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.live {
		close(p.gate)
	}
	f.live = nil
}

// TestDialerReplacesADeadConnection: when the connection to the server
// goes silent without closing, the HTTP/2 health check (PING) finds it
// dead and new tunneled connections go over a new one.
func TestDialerReplacesADeadConnection(t *testing.T) {
	ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
	fr := newFreezer(t, ts.addr)
	h2 := ClientHTTP2Config()
	h2.SendPingTimeout, h2.PingTimeout = 300*time.Millisecond, 300*time.Millisecond
	d, err := NewDialer(DialerConfig{
		Servers:   []string{serverURL(fr.ln.Addr().String())},
		Pin:       pinOf(ts),
		Transport: "h2",
		HTTP2:     h2,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	expectRecovery(t, d, fr.freeze)
}

// expectRecovery checks that d carries a tunneled echo, then calls freeze
// and expects tunneled echoes to work again within 15 s.
func expectRecovery(t *testing.T, d *Dialer, freeze func()) {
	t.Helper()
	target := echoTarget(t)
	echo := func(timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		c, err := d.DialContext(ctx, "tcp", target)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(timeout))
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		buf := make([]byte, 4)
		_, err = io.ReadFull(c, buf)
		return err
	}
	if err := echo(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	freeze()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := echo(time.Second)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no working tunnel 15 s after the connection froze: %v", err)
		}
	}
}
