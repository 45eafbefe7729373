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

// readRequest reads a request: CONNECT or UDP ASSOCIATE. A malformed one
// that can be answered is a *protocolError carrying the reply code; a
// short read is returned as is.
func readRequest(r io.Reader) (request, error) {
	var b [4 + 1 + 255 + 2]byte
	if _, err := io.ReadFull(r, b[:4]); err != nil {
		return request{}, fmt.Errorf("socks5: request: %w", err)
	}
	if b[0] != version5 {
		return request{}, &protocolError{reply: ReplyGeneralFailure, msg: fmt.Sprintf("request: version %d", b[0])}
	}
	q := request{cmd: b[1], atyp: b[3]}
	if addrSize(q.atyp, 0) == 0 {
		return request{}, &protocolError{reply: ReplyAddressNotSupported, msg: fmt.Sprintf("request: address type %d", q.atyp)}
	}
	// The address's first byte is a domain's length: read it, then the rest.
	if _, err := io.ReadFull(r, b[4:5]); err != nil {
		return request{}, fmt.Errorf("socks5: request: %w", err)
	}
	n := addrSize(q.atyp, b[4])
	if _, err := io.ReadFull(r, b[5:4+n]); err != nil {
		return request{}, fmt.Errorf("socks5: request: %w", err)
	}
	var err error
	if q.host, q.port, err = parseAddr(b[3 : 4+n]); err != nil {
		return request{}, &protocolError{reply: ReplyGeneralFailure, msg: "request: " + err.Error()}
	}
	switch q.cmd {
	case cmdConnect, cmdAssociate:
	case cmdBind:
		return q, &protocolError{reply: ReplyCommandNotSupported, msg: fmt.Sprintf("request: command %d not supported", q.cmd)}
	default:
		return q, &protocolError{reply: ReplyCommandNotSupported, msg: fmt.Sprintf("request: unknown command %d", q.cmd)}
	}
	return q, nil
}

// addrSize is the size of DST.ADDR and DST.PORT after an ATYP of atyp,
// whose first byte is first (a domain name's length), or 0 for an unknown
// address type.
func addrSize(atyp, first byte) int {
	switch atyp {
	case atypIPv4:
		return 4 + 2
	case atypIPv6:
		return 16 + 2
	case atypDomain:
		return 1 + int(first) + 2
	}
	return 0
}

// parseAddr parses ATYP DST.ADDR DST.PORT, exactly addrSize long after
// ATYP, as requests and UDP headers carry it: host is an IP address in
// text form (a name that is an address too), or a valid name.
func parseAddr(b []byte) (host string, port uint16, err error) {
	atyp, addr := b[0], b[1:len(b)-2]
	port = binary.BigEndian.Uint16(b[len(b)-2:])
	switch atyp {
	case atypIPv4:
		return netip.AddrFrom4([4]byte(addr)).String(), port, nil
	case atypIPv6:
		return netip.AddrFrom16([16]byte(addr)).String(), port, nil
	}
	name := addr[1:]
	if ip, err := netip.ParseAddr(string(name)); err == nil && ip.Zone() == "" {
		return ip.String(), port, nil // an address sent as a name
	}
	if !validName(name) {
		return "", 0, fmt.Errorf("bad domain name %q", name)
	}
	return string(name), port, nil
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
	b = appendIP(b, bound.Addr().Unmap())
	return binary.BigEndian.AppendUint16(b, bound.Port())
}

// appendAddr appends ATYP DST.ADDR DST.PORT for host, an IP address in
// text form or a name (as parseAddr returns it).
func appendAddr(b []byte, host string, port uint16) []byte {
	if ip, err := netip.ParseAddr(host); err == nil {
		b = appendIP(b, ip)
	} else {
		b = append(b, atypDomain, byte(len(host)))
		b = append(b, host...)
	}
	return binary.BigEndian.AppendUint16(b, port)
}

// appendIP appends ATYP and the address; an invalid ip is sent as 0.0.0.0.
func appendIP(b []byte, ip netip.Addr) []byte {
	switch {
	case ip.Is4():
		b = append(b, atypIPv4)
	case ip.Is6():
		b = append(b, atypIPv6)
	default:
		return append(b, atypIPv4, 0, 0, 0, 0)
	}
	return append(b, ip.AsSlice()...)
}
