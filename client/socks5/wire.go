package socks5

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
)

const (
	version5      = 0x05
	authVersion   = 0x01 // RFC 1929 sub-negotiation
	methodNone    = 0x00
	methodUserPwd = 0x02
	methodNoneOK  = 0xFF // no acceptable methods

	cmdConnect   = 0x01
	cmdBind      = 0x02
	cmdAssociate = 0x03

	atypIPv4   = 0x01
	atypDomain = 0x03
	atypIPv6   = 0x04
)

// protocolError is a malformed request that deserves a reply before the
// connection is closed.
type protocolError struct {
	reply byte
	msg   string
}

func (e *protocolError) Error() string { return "socks5: " + e.msg }

// readGreeting reads the client's version and method list.
func readGreeting(r io.Reader) (methods []byte, err error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("socks5: greeting: %w", err)
	}
	if hdr[0] != version5 {
		return nil, fmt.Errorf("socks5: greeting: version %d", hdr[0])
	}
	methods = make([]byte, hdr[1])
	if _, err := io.ReadFull(r, methods); err != nil {
		return nil, fmt.Errorf("socks5: greeting: %w", err)
	}
	return methods, nil
}

// errAuthVersion is an RFC 1929 request with the wrong version.
var errAuthVersion = errors.New("bad version")

// readUserPass reads an RFC 1929 username/password request.
func readUserPass(r io.Reader) (user, pass string, err error) {
	var b [256]byte
	if _, err := io.ReadFull(r, b[:2]); err != nil {
		return "", "", fmt.Errorf("socks5: auth: %w", err)
	}
	if b[0] != authVersion {
		return "", "", fmt.Errorf("socks5: auth: %w %d", errAuthVersion, b[0])
	}
	n := int(b[1])
	if _, err := io.ReadFull(r, b[:n+1]); err != nil {
		return "", "", fmt.Errorf("socks5: auth: %w", err)
	}
	user = string(b[:n])
	n = int(b[n])
	if _, err := io.ReadFull(r, b[:n]); err != nil {
		return "", "", fmt.Errorf("socks5: auth: %w", err)
	}
	return user, string(b[:n]), nil
}

// request is a parsed SOCKS5 request.
type request struct {
	cmd  byte
	atyp byte
	host string // an IP address in text form, or a domain name
	port uint16
}

// address is host:port, for Dial.
func (q request) address() string {
	return net.JoinHostPort(q.host, strconv.Itoa(int(q.port)))
}

// readRequest reads a request. A malformed one that can be answered is a
// *protocolError carrying the reply code; a short read is returned as is.
func readRequest(r io.Reader) (request, error) {
	var b [4 + 1 + 255 + 2]byte
	if _, err := io.ReadFull(r, b[:4]); err != nil {
		return request{}, fmt.Errorf("socks5: request: %w", err)
	}
	if b[0] != version5 {
		return request{}, &protocolError{reply: ReplyGeneralFailure, msg: fmt.Sprintf("request: version %d", b[0])}
	}
	q := request{cmd: b[1], atyp: b[3]}
	var addr []byte
	switch q.atyp {
	case atypIPv4:
		addr = b[4 : 4+4+2]
	case atypIPv6:
		addr = b[4 : 4+16+2]
	case atypDomain:
		if _, err := io.ReadFull(r, b[4:5]); err != nil {
			return request{}, fmt.Errorf("socks5: request: %w", err)
		}
		addr = b[5 : 5+int(b[4])+2]
	default:
		return request{}, &protocolError{reply: ReplyAddressNotSupported, msg: fmt.Sprintf("request: address type %d", q.atyp)}
	}
	if _, err := io.ReadFull(r, addr); err != nil {
		return request{}, fmt.Errorf("socks5: request: %w", err)
	}
	host, port := addr[:len(addr)-2], addr[len(addr)-2:]
	q.port = binary.BigEndian.Uint16(port)
	switch q.atyp {
	case atypIPv4:
		q.host = netip.AddrFrom4([4]byte(host)).String()
	case atypIPv6:
		q.host = netip.AddrFrom16([16]byte(host)).String()
	default:
		if ip, err := netip.ParseAddr(string(host)); err == nil && ip.Zone() == "" {
			q.host = ip.String() // an address sent as a name
		} else if validName(host) {
			q.host = string(host)
		} else {
			return request{}, &protocolError{reply: ReplyGeneralFailure, msg: fmt.Sprintf("request: bad domain name %q", host)}
		}
	}
	switch q.cmd {
	case cmdConnect:
	case cmdBind, cmdAssociate:
		return q, &protocolError{reply: ReplyCommandNotSupported, msg: fmt.Sprintf("request: command %d not supported", q.cmd)}
	default:
		return q, &protocolError{reply: ReplyCommandNotSupported, msg: fmt.Sprintf("request: unknown command %d", q.cmd)}
	}
	return q, nil
}

// validName reports whether name is a plausible host name: letters,
// digits, '-', '_' and '.', not empty. It keeps ':', '/', '%', spaces and
// control bytes from reaching the dialer.
func validName(name []byte) bool {
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// appendReply appends a reply with the given code and bound address; an
// invalid addr is sent as 0.0.0.0:0.
func appendReply(b []byte, code byte, bound netip.AddrPort) []byte {
	b = append(b, version5, code, 0x00)
	ip := bound.Addr().Unmap()
	switch {
	case ip.Is4():
		b = append(b, atypIPv4)
		b = append(b, ip.AsSlice()...)
	case ip.Is6():
		b = append(b, atypIPv6)
		b = append(b, ip.AsSlice()...)
	default:
		b = append(b, atypIPv4, 0, 0, 0, 0)
	}
	return binary.BigEndian.AppendUint16(b, bound.Port())
}
