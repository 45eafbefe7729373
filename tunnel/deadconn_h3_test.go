package tunnel

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

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

// TestDialerReplacesADeadQUICConnection: when the QUIC connection to the
// server goes silent without closing, its keep-alives go unanswered, the
// idle timeout ends it, and new tunneled connections go over a new one.
func TestDialerReplacesADeadQUICConnection(t *testing.T) {
	ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
	fr := newUDPFreezer(t, ts.addr)
	qc := ClientQUICConfig()
	qc.KeepAlivePeriod, qc.MaxIdleTimeout = 200*time.Millisecond, time.Second
	d, err := NewDialer(DialerConfig{
		Servers:   []string{serverURL(fr.pc.LocalAddr().String())},
		Pin:       pinOf(ts),
		Transport: "h3",
		QUIC:      qc,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	expectRecovery(t, d, fr.freeze)
}
