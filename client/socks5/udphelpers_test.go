package socks5

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/porta443/porta/internal/relay/relaytest"
	"github.com/porta443/porta/internal/testenv"
)

// udpMsg builds a UDP request datagram: RSV FRAG ATYP DST.ADDR DST.PORT DATA.
func udpMsg(atyp byte, addr []byte, port uint16, data string) []byte {
	b := []byte{0, 0, 0, atyp}
	if atyp == atypDomain {
		b = append(b, byte(len(addr)))
	}
	b = append(b, addr...)
	b = binary.BigEndian.AppendUint16(b, port)
	return append(b, data...)
}

// udpMsgTo is udpMsg to an IPv4 address.
func udpMsgTo(target netip.AddrPort, data string) []byte {
	return udpMsg(atypIPv4, target.Addr().AsSlice(), target.Port(), data)
}

// udpEcho is a loopback UDP server that sends every datagram back.
type udpEcho struct {
	*testenv.UDPEcho
	addr netip.AddrPort
}

func startUDPEcho(t *testing.T) *udpEcho { return startUDPEchoOn(t, "127.0.0.1") }

func startUDPEchoOn(t *testing.T, ip string) *udpEcho {
	e := testenv.NewUDPEcho(t, ip)
	return &udpEcho{UDPEcho: e, addr: e.Addr.AddrPort()}
}

// listenUDP opens a UDP socket on ip, closed at cleanup.
func listenUDP(t *testing.T, ip string) *net.UDPConn {
	t.Helper()
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	pc.SetReadBuffer(1 << 20) // as the relay's: bursts are what some tests send
	return pc
}

// udpDialer is a DialUDP for the tests: a net.Dialer to loopback. A name
// in names is dialed at its address there, never through the resolver,
// and an IP address as it is. It records the addresses it was asked for
// and the connections it made; hold, if set, runs before each dial, and
// maxWrite, if set, is the largest datagram its connections take (as a
// tunnel's datagrams are bounded).
type udpDialer struct {
	names    map[string]string
	hold     func(ctx context.Context, host string) error
	maxWrite int

	mu      sync.Mutex
	asked   []string
	conns   []*trackedConn
	newConn chan struct{} // closed, and replaced, when a connection is made
}

func (d *udpDialer) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	d.mu.Lock()
	d.asked = append(d.asked, address)
	d.mu.Unlock()
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	if a, ok := d.names[host]; ok {
		address = a
	} else if _, err := netip.ParseAddr(host); err != nil {
		return nil, fmt.Errorf("test dialer: unknown name %q", host)
	}
	if d.hold != nil {
		if err := d.hold(ctx, host); err != nil {
			return nil, err
		}
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	// The far side of a tunnel buffers a burst for the flow: so does this.
	c.(*net.UDPConn).SetReadBuffer(1 << 20)
	tc := &trackedConn{Conn: c, maxWrite: d.maxWrite, closed: make(chan struct{})}
	d.mu.Lock()
	d.conns = append(d.conns, tc)
	if d.newConn != nil {
		close(d.newConn)
		d.newConn = nil
	}
	d.mu.Unlock()
	return tc, nil
}

func (d *udpDialer) askedFor() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.asked...)
}

// conn waits for the i'th connection made (from 0), dialed in a flow's
// own goroutine.
func (d *udpDialer) conn(t *testing.T, i int) *trackedConn {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		d.mu.Lock()
		if i < len(d.conns) {
			defer d.mu.Unlock()
			return d.conns[i]
		}
		if d.newConn == nil {
			d.newConn = make(chan struct{})
		}
		changed := d.newConn
		n := len(d.conns)
		d.mu.Unlock()
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("dialed %d connections, waited for connection %d", n, i)
		}
	}
}

// trackedConn tells when it is closed.
type trackedConn struct {
	net.Conn
	maxWrite int
	once     sync.Once
	closed   chan struct{}
}

var errTooBig = errors.New("test dialer: datagram too big")

func (c *trackedConn) Write(p []byte) (int, error) {
	if c.maxWrite > 0 && len(p) > c.maxWrite {
		return 0, errTooBig
	}
	return c.Conn.Write(p)
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

func (c *trackedConn) waitClosed(t *testing.T, what string) {
	t.Helper()
	select {
	case <-c.closed:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: the flow's connection was not closed", what)
	}
}

// startUDPServer serves cfg on 127.0.0.1 and returns the server and its
// address.
func startUDPServer(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, relaytest.Serve(t, s)
}

// udpClient is a UDP association's client: its control connection, the
// relay the server named and its own socket.
type udpClient struct {
	t     *testing.T
	ctrl  *net.TCPConn
	relay netip.AddrPort
	pc    *net.UDPConn
}

// associate sends UDP ASSOCIATE to proxy with hint as DST, checks the
// reply and returns the association, with pc as its socket (nil: a new
// one on the IP the client connected from).
func associate(t *testing.T, proxy string, hint netip.AddrPort, pc *net.UDPConn) *udpClient {
	t.Helper()
	ctrl := dialSOCKS(t, proxy)
	local := ctrl.LocalAddr().(*net.TCPAddr).AddrPort()
	if pc == nil {
		pc = listenUDP(t, local.Addr().String())
	}
	ip := hint.Addr()
	if !ip.IsValid() {
		ip = netip.IPv4Unspecified()
	}
	atyp := byte(atypIPv4)
	if ip.Is6() {
		atyp = atypIPv6
	}
	ctrl.Write(cat([]byte{5, 1, 0, 5, cmdAssociate, 0, atyp}, ip.AsSlice(), binary.BigEndian.AppendUint16(nil, hint.Port())))
	got := make([]byte, 2+4)
	if _, err := io.ReadFull(ctrl, got); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "method and reply code", got[:5], []byte{5, 0, 5, ReplySucceeded, 0})
	var bound []byte
	switch got[5] {
	case atypIPv4:
		bound = make([]byte, 4+2)
	case atypIPv6:
		bound = make([]byte, 16+2)
	default:
		t.Fatalf("bound address type %d", got[5])
	}
	if _, err := io.ReadFull(ctrl, bound); err != nil {
		t.Fatal(err)
	}
	boundIP, _ := netip.AddrFromSlice(bound[:len(bound)-2])
	relay := netip.AddrPortFrom(boundIP, binary.BigEndian.Uint16(bound[len(bound)-2:]))
	if want := ctrl.RemoteAddr().(*net.TCPAddr).AddrPort().Addr(); relay.Addr() != want || relay.Port() == 0 {
		t.Fatalf("relay at %v, want %v and a port", relay, want)
	}
	return &udpClient{t: t, ctrl: ctrl, relay: relay, pc: pc}
}

func (c *udpClient) send(msg []byte) {
	c.t.Helper()
	if _, err := c.pc.WriteToUDPAddrPort(msg, c.relay); err != nil {
		c.t.Fatal(err)
	}
}

// recv reads one datagram, which must come from the relay.
func (c *udpClient) recv() []byte {
	c.t.Helper()
	c.pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, udpBufferSize)
	n, from, err := c.pc.ReadFromUDPAddrPort(buf)
	if err != nil {
		c.t.Fatal(err)
	}
	if from != c.relay {
		c.t.Fatalf("a datagram from %v, not the relay %v", from, c.relay)
	}
	return buf[:n]
}

// echo sends msg to an echo target and checks that it comes back as it
// went, the same header naming the target.
func (c *udpClient) echo(msg []byte) {
	c.t.Helper()
	c.send(msg)
	mustEqual(c.t, "echo", c.recv(), msg)
}

// waitFor polls cond where nothing signals it (a counter the server
// keeps), until a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var errRefusedByTest = errors.New("test dialer: refused")

// waitStats waits for s's UDP counters to read want: a datagram's answer
// may reach the client before the relay counted the datagram.
func waitStats(t *testing.T, s *Server, want UDPStats) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for st := s.UDPStats(); st != want; st = s.UDPStats() {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want %+v", st, want)
		}
		time.Sleep(time.Millisecond)
	}
}
