// Package masque owns the wire forms of UDP proxying over HTTP (MASQUE)
// that both ends of porta's tunnel speak: the URI template of RFC 9298
// (CONNECT-UDP), the HTTP Datagram payload that carries one UDP payload
// under context ID 0 (RFC 9298 §5), and the capsule protocol of RFC 9297
// that carries those datagrams on an HTTP/2 stream, where there are no
// QUIC DATAGRAM frames.
//
// It does no I/O of its own beyond reading capsules from a stream: the
// tunnel package decides who may open a flow and where it goes.
package masque

// Protocol is the :protocol pseudo-header of an extended CONNECT that
// opens a UDP flow (RFC 9298 §3).
const Protocol = "connect-udp"

// CapsuleProtocolHeader is the header field, with the value
// CapsuleProtocolValue, that says a stream carries capsules (RFC 9297
// §3.4); CONNECT-UDP requests and their 2xx answers send it.
const (
	CapsuleProtocolHeader = "Capsule-Protocol"
	CapsuleProtocolValue  = "?1"
)
