package socks5

import (
	"errors"
	"fmt"
)

// Why a UDP request datagram is refused; either drops it.
var (
	errUDPHeader     = errors.New("socks5: malformed UDP request header")
	errUDPFragmented = errors.New("socks5: fragmented UDP datagram")
)

// splitUDP splits a UDP request datagram (RFC 1928 section 7: RSV RSV FRAG
// ATYP DST.ADDR DST.PORT DATA) into dst, its ATYP DST.ADDR DST.PORT as
// sent, and data. It checks sizes and the fixed fields; parseAddr checks
// dst. A fragment is refused: the RFC lets a server drop what it does not
// reassemble, and clients do not fragment.
func splitUDP(d []byte) (dst, data []byte, err error) {
	if len(d) < 5 || d[0] != 0 || d[1] != 0 {
		return nil, nil, errUDPHeader
	}
	if d[2] != 0 {
		return nil, nil, errUDPFragmented
	}
	n := addrSize(d[3], d[4])
	if n == 0 || len(d) < 4+n {
		return nil, nil, errUDPHeader
	}
	return d[3 : 4+n], d[4+n:], nil
}

// AppendUDPHeader appends the header of a UDP datagram (RFC 1928 section
// 7) naming host (an IP address in text form or a name) and port: what a
// client puts before a datagram to that target, and the relay before one
// from it. It is exported for the clients that tests and benchmarks use.
func AppendUDPHeader(b []byte, host string, port uint16) []byte {
	return appendAddr(append(b, 0, 0, 0), host, port)
}

// ParseUDPHeader splits a UDP datagram into the target its header names
// (as AppendUDPHeader takes it) and its data. It refuses a fragment and a
// malformed header.
func ParseUDPHeader(d []byte) (host string, port uint16, data []byte, err error) {
	dst, data, err := splitUDP(d)
	if err != nil {
		return "", 0, nil, err
	}
	if host, port, err = parseAddr(dst); err != nil {
		return "", 0, nil, fmt.Errorf("socks5: UDP header: %w", err)
	}
	return host, port, data, nil
}
