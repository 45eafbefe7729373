package mmsg

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// One Recv takes several datagrams, with their bytes, a cut marked, and
// each sender's address.
func TestBatchRecv(t *testing.T) {
	ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sender, err := net.DialUDP("udp", nil, ln.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	sent := []string{"one", "two", strings.Repeat("x", 100)}
	for _, d := range sent {
		if _, err := sender.Write([]byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond) // all three queued

	rc, err := ln.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	b := NewBatch(8, 64, true)
	n, err := b.Recv(rc, nil)
	if err != nil || n != 3 {
		t.Fatalf("Recv: %d, %v; want 3", n, err)
	}
	want := netip.MustParseAddrPort(sender.LocalAddr().String())
	for i := range n {
		d, cut := b.Datagram(i)
		wantData, wantCut := sent[i], false
		if len(wantData) > 64 {
			wantData, wantCut = wantData[:64], true
		}
		if string(d) != wantData || cut != wantCut {
			t.Errorf("datagram %d: %q cut %v; want %q cut %v", i, d, cut, wantData, wantCut)
		}
		if from, ok := b.From(i); !ok || from != want {
			t.Errorf("datagram %d from %v, %v; want %v", i, from, ok, want)
		}
	}
}
