package testenv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
)

// UDPEcho is a UDP server on loopback that sends every datagram back to
// where it came from. It stops at the test's cleanup.
type UDPEcho struct {
	Addr     *net.UDPAddr
	Received atomic.Uint64 // datagrams it took
}

// NewUDPEcho starts a UDPEcho on ip ("127.0.0.1", "::1", ...), with a
// 1 MiB receive buffer: bursts are what tests send it.
func NewUDPEcho(t testing.TB, ip string) *UDPEcho {
	t.Helper()
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatal(err)
	}
	pc.SetReadBuffer(1 << 20)
	e := &UDPEcho{Addr: pc.LocalAddr().(*net.UDPAddr)}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 1<<16)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			e.Received.Add(1)
			pc.WriteToUDPAddrPort(buf[:n], from)
		}
	})
	t.Cleanup(func() {
		pc.Close()
		wg.Wait()
	})
	return e
}

// Numbered is what came back of a numbered exchange.
type Numbered struct {
	Sent, Echoed, Duplicates, Reordered, Corrupt int
}

func (n Numbered) String() string {
	return fmt.Sprintf("sent %d, echoed %d, lost %d, duplicated %d, reordered %d, corrupt %d",
		n.Sent, n.Echoed, n.Sent-n.Echoed, n.Duplicates, n.Reordered, n.Corrupt)
}

// Check fails t on a duplicate or a corrupt datagram, or on a loss of more
// than 1%: loopback loses none, but a loaded machine may drop a few.
func (n Numbered) Check(t testing.TB) {
	t.Helper()
	if n.Duplicates != 0 || n.Corrupt != 0 {
		t.Errorf("%s", n)
	}
	if lost := n.Sent - n.Echoed; lost > n.Sent/100 {
		t.Errorf("lost %d of %d: %s", lost, n.Sent, n)
	}
}

// ExchangeNumbered sends total datagrams of size bytes (at least 4), each
// carrying its number and bytes that follow from it, at most window
// without an answer, and counts what comes back through recv: each one
// whole, once, and in what order. recv returns the next datagram's
// length, or an error that wraps os.ErrDeadlineExceeded when none came
// within its wait (after which whatever is out counts as lost, and the
// window opens again).
func ExchangeNumbered(t testing.TB, total, window, size int, send func([]byte) error, recv func([]byte) (int, error)) Numbered {
	t.Helper()
	datagram := func(seq int, b []byte) []byte {
		b = binary.BigEndian.AppendUint32(b[:0], uint32(seq))
		for i := 4; i < size; i++ {
			b = append(b, byte(seq*31+i*7))
		}
		return b
	}
	var n Numbered
	seen := make([]bool, total)
	given, highest := 0, -1 // given: up as lost after a silence
	out, in, want := make([]byte, 0, size), make([]byte, 1<<16), make([]byte, 0, size)
	for n.Sent < total || n.Echoed+given < n.Sent {
		for ; n.Sent < total && n.Sent-n.Echoed-given < window; n.Sent++ {
			if err := send(datagram(n.Sent, out)); err != nil {
				t.Fatalf("sending datagram %d: %v", n.Sent, err)
			}
		}
		got, err := recv(in)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			given = n.Sent - n.Echoed
			continue
		}
		if err != nil {
			t.Fatalf("after %d datagrams back: %v", n.Echoed, err)
		}
		if got < 4 {
			n.Corrupt++
			continue
		}
		seq := int(binary.BigEndian.Uint32(in))
		if seq >= total || string(in[:got]) != string(datagram(seq, want)) {
			n.Corrupt++
			continue
		}
		if seen[seq] {
			n.Duplicates++
			continue
		}
		seen[seq] = true
		n.Echoed++
		if seq < highest {
			n.Reordered++
		}
		highest = max(highest, seq)
	}
	return n
}
