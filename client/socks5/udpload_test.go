package socks5

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/porta443/porta/internal/testenv"
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
	c.echo(udpMsgTo(echo.addr, "first")) // the flow is dialed: no datagram waits for it

	send := func(p []byte) error {
		c.send(append(bytes.Clone(hdr), p...))
		return nil
	}
	buf := make([]byte, udpBufferSize)
	recv := func(p []byte) (int, error) {
		c.pc.SetReadDeadline(time.Now().Add(time.Second))
		n, _, err := c.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			return 0, err
		}
		if n < len(hdr) {
			return 0, nil // counted as corrupt
		}
		return copy(p, buf[len(hdr):n]), nil
	}
	n := testenv.ExchangeNumbered(t, total, window, size, send, recv)
	st := s.UDPStats()
	t.Logf("%d datagrams of %d bytes, %d in flight at most: %s; the target got %d; the relay counted %d in, %d out, dropped %v (the relay's and the target's counts include the first datagram)",
		total, size, window, n, echo.Received.Load()-1, st.DatagramsIn, st.DatagramsOut, st.Dropped)
	n.Check(t)
}
