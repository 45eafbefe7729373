package sameport

import (
	"net"
	"testing"
)

func TestListenSharesThePort(t *testing.T) {
	for range 20 {
		tcp, udp, err := Listen("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, tp, _ := net.SplitHostPort(tcp.Addr().String())
		_, up, _ := net.SplitHostPort(udp.LocalAddr().String())
		tcp.Close()
		udp.Close()
		if tp != up || tp == "0" {
			t.Fatalf("TCP port %s, UDP port %s", tp, up)
		}
	}
}

func TestListenTakenPortIsAnError(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	// A fixed port that is taken on UDP: no silent move to another port.
	if tcp, udp, err := Listen(pc.LocalAddr().String()); err == nil {
		tcp.Close()
		udp.Close()
		t.Fatal("Listen took a port already in use on UDP")
	}
}
