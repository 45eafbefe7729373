// Package socksudp is the client side of a SOCKS5 UDP association (RFC
// 1928 section 7) as a net.PacketConn, for the tests and benchmarks that
// drive porta client's SOCKS5 proxy as a UDP application would (a DNS
// tool, a QUIC client).
package socksudp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// PacketConn sends and receives datagrams through a SOCKS5 UDP
// association. It ends when Close closes the association's TCP control
// connection.
type PacketConn struct {
	pc    *net.UDPConn // not embedded: a QUIC stack would use its ReadMsgUDP and skip the headers
	ctrl  net.Conn
	relay *net.UDPAddr

	rmu, wmu   sync.Mutex
	rbuf, wbuf []byte
}

// Associate asks the SOCKS5 proxy at proxy (no authentication) for a UDP
// association and returns a PacketConn on it.
func Associate(ctx context.Context, proxy string) (*PacketConn, error) {
	ctrl, err := (&net.Dialer{}).DialContext(ctx, "tcp", proxy)
	if err != nil {
		return nil, err
	}
	relay, err := associate(ctx, ctrl)
	if err != nil {
		ctrl.Close()
		return nil, err
	}
	local := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	if relay.Addr().Is6() {
		local = &net.UDPAddr{IP: net.IPv6loopback}
	}
	pc, err := net.ListenUDP("udp", local)
	if err != nil {
		ctrl.Close()
		return nil, err
	}
	return &PacketConn{pc: pc, ctrl: ctrl, relay: net.UDPAddrFromAddrPort(relay)}, nil
}

func associate(ctx context.Context, c net.Conn) (netip.AddrPort, error) {
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	} else {
		c.SetDeadline(time.Now().Add(10 * time.Second))
	}
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte{5, 1, 0, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0}); err != nil {
		return netip.AddrPort{}, err
	}
	var b [4]byte
	if _, err := io.ReadFull(c, b[:2]); err != nil {
		return netip.AddrPort{}, err
	}
	if b[0] != 5 || b[1] != 0 {
		return netip.AddrPort{}, fmt.Errorf("socksudp: the proxy refused no-auth (method %d)", b[1])
	}
	if _, err := io.ReadFull(c, b[:4]); err != nil {
		return netip.AddrPort{}, err
	}
	if b[1] != 0 {
		return netip.AddrPort{}, fmt.Errorf("socksudp: UDP ASSOCIATE refused with reply %d", b[1])
	}
	var ip []byte
	switch b[3] {
	case 1:
		ip = make([]byte, 4)
	case 4:
		ip = make([]byte, 16)
	default:
		return netip.AddrPort{}, fmt.Errorf("socksudp: relay address of type %d", b[3])
	}
	var port [2]byte
	if _, err := io.ReadFull(c, ip); err != nil {
		return netip.AddrPort{}, err
	}
	if _, err := io.ReadFull(c, port[:]); err != nil {
		return netip.AddrPort{}, err
	}
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a.Unmap(), binary.BigEndian.Uint16(port[:])), nil
}

// Header appends the UDP request header for host (an IP address or a
// name) and port to b.
func Header(b []byte, host string, port uint16) []byte {
	b = append(b, 0, 0, 0)
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Is4() || a.Is4In6() {
			b = append(b, 1)
		} else {
			b = append(b, 4)
		}
		b = append(b, a.Unmap().AsSlice()...)
	} else {
		b = append(append(b, 3, byte(len(host))), host...)
	}
	return binary.BigEndian.AppendUint16(b, port)
}

// WriteTo sends p to addr (host:port; the host may be a name, which the
// proxy's far side resolves) through the association.
func (c *PacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	host, portStr, err := net.SplitHostPort(addr.String())
	if err != nil {
		return 0, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return 0, err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = append(Header(c.wbuf[:0], host, uint16(port)), p...)
	if _, err := c.pc.WriteTo(c.wbuf, c.relay); err != nil {
		return 0, err
	}
	return len(p), nil
}

// ReadFrom returns the next datagram from the association and who sent
// it: a *net.UDPAddr, or a Name for an answer from a target named by name.
func (c *PacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.rbuf == nil {
		c.rbuf = make([]byte, 65536)
	}
	buf := c.rbuf
	for {
		n, _, err := c.pc.ReadFrom(buf)
		if err != nil {
			return 0, nil, err
		}
		from, data, err := split(buf[:n])
		if err != nil {
			continue // not a reply of the association's
		}
		return copy(p, data), from, nil
	}
}

// Name is the address of a target named by name.
type Name string

func (n Name) Network() string { return "udp" }
func (n Name) String() string  { return string(n) }

var errHeader = errors.New("socksudp: malformed reply header")

func split(d []byte) (net.Addr, []byte, error) {
	if len(d) < 5 || d[0] != 0 || d[1] != 0 || d[2] != 0 {
		return nil, nil, errHeader
	}
	var host string
	var rest []byte
	switch d[3] {
	case 1, 4:
		n := 4
		if d[3] == 4 {
			n = 16
		}
		if len(d) < 4+n+2 {
			return nil, nil, errHeader
		}
		a, _ := netip.AddrFromSlice(d[4 : 4+n])
		port := binary.BigEndian.Uint16(d[4+n:])
		return net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, port)), d[4+n+2:], nil
	case 3:
		n := int(d[4])
		if len(d) < 5+n+2 {
			return nil, nil, errHeader
		}
		host, rest = string(d[5:5+n]), d[5+n:]
	default:
		return nil, nil, errHeader
	}
	port := binary.BigEndian.Uint16(rest)
	return Name(net.JoinHostPort(host, strconv.Itoa(int(port)))), rest[2:], nil
}

// Close ends the association and closes the socket.
func (c *PacketConn) Close() error {
	c.ctrl.Close()
	return c.pc.Close()
}

func (c *PacketConn) LocalAddr() net.Addr                { return c.pc.LocalAddr() }
func (c *PacketConn) SetDeadline(t time.Time) error      { return c.pc.SetDeadline(t) }
func (c *PacketConn) SetReadDeadline(t time.Time) error  { return c.pc.SetReadDeadline(t) }
func (c *PacketConn) SetWriteDeadline(t time.Time) error { return c.pc.SetWriteDeadline(t) }

// Relay is the address where the association takes datagrams.
func (c *PacketConn) Relay() *net.UDPAddr { return c.relay }

// WriteRaw sends d to the relay as it is, header and all (for tests of
// what a proxy does with a malformed one).
func (c *PacketConn) WriteRaw(d []byte) (int, error) { return c.pc.WriteTo(d, c.relay) }

// SetReadBuffer and SetWriteBuffer size the socket's buffers (a QUIC
// stack asks for large ones).
func (c *PacketConn) SetReadBuffer(n int) error  { return c.pc.SetReadBuffer(n) }
func (c *PacketConn) SetWriteBuffer(n int) error { return c.pc.SetWriteBuffer(n) }
