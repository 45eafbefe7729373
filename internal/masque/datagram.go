package masque

import "github.com/quic-go/quic-go/quicvarint"

// AppendDatagram appends the HTTP Datagram payload that carries one UDP
// payload: context ID 0, then the payload as it is (RFC 9298 §5).
func AppendDatagram(b, payload []byte) []byte {
	return append(append(b, 0), payload...)
}

// ParseDatagram returns the UDP payload of an HTTP Datagram payload, or
// ok false for one whose context ID is not 0 (a registered extension we
// do not speak: RFC 9298 §4 says drop it) or that is empty.
func ParseDatagram(b []byte) (payload []byte, ok bool) {
	id, n, err := quicvarint.Parse(b)
	if err != nil || id != 0 {
		return nil, false
	}
	return b[n:], true
}
