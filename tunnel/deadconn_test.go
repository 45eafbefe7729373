package tunnel

import (
	"context"
	"io"
	"net"
	"net/netip"
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

// udpFreezer is a UDP proxy whose flows (one per client address) can be
// frozen: their datagrams are dropped both ways from then on, as when a
// laptop sleeps under an open QUIC connection. Flows from new client
// addresses, which a new QUIC connection opens, pass.
type udpFreezer struct {
	pc     *net.UDPConn
	target *net.UDPAddr
	mu     sync.Mutex
	flows  map[netip.AddrPort]*udpFlow
}

type udpFlow struct {
	up     *net.UDPConn // to the target, from a port of its own
	frozen bool
}

func newUDPFreezer(t *testing.T, target string) *udpFreezer {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ta, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		t.Fatal(err)
	}
	f := &udpFreezer{pc: pc, target: ta, flows: make(map[netip.AddrPort]*udpFlow)}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			fl := f.flow(t, from, &wg)
			if fl == nil {
				continue
			}
			f.mu.Lock()
			frozen := fl.frozen
			f.mu.Unlock()
			if !frozen {
				fl.up.Write(buf[:n])
			}
		}
	})
	t.Cleanup(func() {
		pc.Close()
		f.mu.Lock()
		for _, fl := range f.flows {
			fl.up.Close()
		}
		f.mu.Unlock()
		wg.Wait()
	})
	return f
}

// flow returns the flow of a client address, opening it and its reader
// (answers back to the client) the first time.
func (f *udpFreezer) flow(t *testing.T, from netip.AddrPort, wg *sync.WaitGroup) *udpFlow {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fl := f.flows[from]; fl != nil {
		return fl
	}
	up, err := net.DialUDP("udp", nil, f.target)
	if err != nil {
		t.Error(err)
		return nil
	}
	fl := &udpFlow{up: up}
	f.flows[from] = fl
	wg.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := up.Read(buf)
			if err != nil {
				return
			}
			f.mu.Lock()
			frozen := fl.frozen
			f.mu.Unlock()
			if !frozen {
				f.pc.WriteToUDPAddrPort(buf[:n], from)
			}
		}
	})
	return fl
}

func (f *udpFreezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fl := range f.flows {
		fl.frozen = true
	}
}

// TestDialerReplacesADeadConnection: when the connection to the server
// goes silent without closing, as when a laptop sleeps or its network
// changes under it, the Dialer finds it dead (HTTP/2: the health check's
// PING goes unanswered; HTTP/3: so do the keep-alives, and the idle timeout
// ends it) and new tunneled connections go over a new one.
func TestDialerReplacesADeadConnection(t *testing.T) {
	runOver(t, dialerModes, func(t *testing.T, mode string) {
		ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
		cfg := DialerConfig{Pin: pinOf(ts)}
		var freeze func()
		if mode == "h3" {
			fr := newUDPFreezer(t, ts.addr)
			cfg.Servers, freeze = []string{serverURL(fr.pc.LocalAddr().String())}, fr.freeze
			cfg.QUIC = ClientQUICConfig()
			cfg.QUIC.KeepAlivePeriod, cfg.QUIC.MaxIdleTimeout = 200*time.Millisecond, time.Second
		} else {
			fr := newFreezer(t, ts.addr)
			cfg.Servers, freeze = []string{serverURL(fr.ln.Addr().String())}, fr.freeze
			cfg.HTTP2 = ClientHTTP2Config()
			cfg.HTTP2.SendPingTimeout, cfg.HTTP2.PingTimeout = 300*time.Millisecond, 300*time.Millisecond
		}
		d, err := NewDialer(withMode(mode, cfg))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		expectRecovery(t, d, freeze)
	})
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
