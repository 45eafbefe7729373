// Package socksudp is the client side of a SOCKS5 UDP association (RFC
// 1928 section 7) as a net.PacketConn, for the tests and benchmarks that
// drive porta client's SOCKS5 proxy as a UDP application would (a DNS
// tool, a QUIC client).
package socksudp

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/porta443/porta/client/socks5"
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
	c.wbuf = append(socks5.AppendUDPHeader(c.wbuf[:0], host, uint16(port)), p...)
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

// split parses a reply datagram's header: who sent the data, and the data.
func split(d []byte) (net.Addr, []byte, error) {
	host, port, data, err := socks5.ParseUDPHeader(d)
	if err != nil {
		return nil, nil, err
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, port)), data, nil
	}
	return Name(net.JoinHostPort(host, strconv.Itoa(int(port)))), data, nil
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
