package socks5

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"
)

// TestUDPManyDatagrams: 10,000 datagrams each way through an association
// to an echo target, at most 256 in flight so that no socket buffer on the
// way overflows: none is duplicated or corrupted, and next to none lost
// (loopback loses none, but a loaded machine may drop a few).
func TestUDPManyDatagrams(t *testing.T) {
	const total, window, size = 10000, 256, 512
	echo := startUDPEcho(t)
	s, proxy := startUDPServer(t, Config{Dial: dialDirect, DialUDP: (&udpDialer{}).Dial})
	c := associate(t, proxy, netip.AddrPort{}, nil)
	hdr := udpMsgTo(echo.addr, "")
	// A datagram carries its sequence number, and bytes that follow
	// from it: any corruption shows.
	datagram := func(seq int) []byte {
		b := binary.BigEndian.AppendUint32(bytes.Clone(hdr), uint32(seq))
		for i := len(b); len(b) < len(hdr)+size; i++ {
			b = append(b, byte(seq*31+i*7))
		}
		return b
	}

	c.echo(udpMsgTo(echo.addr, "first")) // the flow is dialed: no datagram waits for it

	seen := make([]bool, total)
	var sent, got, given, dups, reordered, corrupt int // given: up as lost after a silence
	highest := -1
	buf := make([]byte, udpBufferSize)
	for got < total {
		for ; sent < total && sent-got-given < window; sent++ {
			c.send(datagram(sent))
		}
		c.pc.SetReadDeadline(time.Now().Add(time.Second))
		n, _, err := c.pc.ReadFromUDPAddrPort(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if sent == total {
				break
			}
			given = sent - got
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		d := buf[:n]
		if len(d) != len(hdr)+size {
			corrupt++
			continue
		}
		seq := int(binary.BigEndian.Uint32(d[len(hdr):]))
		if seq >= total || !bytes.Equal(d, datagram(seq)) {
			corrupt++
			continue
		}
		if seen[seq] {
			dups++
			continue
		}
		seen[seq] = true
		got++
		if seq < highest {
			reordered++
		}
		highest = max(highest, seq)
	}
	st := s.UDPStats()
	t.Logf("%d datagrams of %d bytes sent, %d in flight at most: the target got %d, the client got back %d (lost %d), duplicates %d, reordered %d, corrupt %d; the relay counted %d in, %d out, dropped %v (the relay's and the target's counts include the first datagram)",
		total, size, window, echo.received.Load()-1, got, total-got, dups, reordered, corrupt, st.DatagramsIn, st.DatagramsOut, st.Dropped)
	if dups != 0 || corrupt != 0 {
		t.Fatalf("%d duplicates, %d corrupt", dups, corrupt)
	}
	if lost := total - got; lost > total/100 {
		t.Fatalf("lost %d of %d", lost, total)
	}
}
