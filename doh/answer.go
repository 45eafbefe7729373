package doh

import (
	"encoding/binary"
	"time"

	"github.com/miekg/dns"
	"github.com/porta443/porta/doh/cache"
)

const (
	// ednsSize is the UDP payload size porta advertises (DNS flag day 2020).
	ednsSize = 1232
	// paddingBlock is the response block size of RFC 8467 §4.1.
	paddingBlock = 468
)

// appendAnswer appends to dst the answer to q (whose message is msg) from e:
// e's wire form with the query's ID, RD and CD bits and question name
// patched in, TTLs counted down (or set for a stale answer), never
// truncated, and an OPT record when the query had one.
func appendAnswer(dst []byte, q *query, msg []byte, e *cache.Entry, now time.Time, stale bool) []byte {
	start := len(dst)
	dst = e.AppendTo(dst, now, stale)
	w := dst[start:]
	binary.BigEndian.PutUint16(w, q.id)
	w[2] = w[2]&^0x03 | b2u8(q.rd) // clear TC, take RD
	f2 := w[3]&^0x10 | b2u8(q.cd)<<4
	if !q.ad && !q.do {
		f2 &^= 0x20 // AD only for clients that asked for it (RFC 6840 §5.8)
	}
	w[3] = f2
	if len(w) >= 12+len(q.name) {
		copy(w[12:], msg[q.nameOff:q.nameOff+len(q.name)]) // the query's 0x20 case
	}
	if !q.edns {
		return dst
	}
	var ede []byte
	if stale {
		ede = []byte{0, dns.EDNS0EDE, 0, 2, 0, byte(dns.ExtendedErrorCodeStaleAnswer)}
	}
	return appendOPT(dst, start, q, uint8(e.Rcode>>4), e.Options, ede)
}

// appendOPT appends an OPT record to the message that starts at dst[start:],
// with the given options and padding when q was padded (RFC 8467).
func appendOPT(dst []byte, start int, q *query, extRcode uint8, opts ...[]byte) []byte {
	var flags byte
	if q.do {
		flags = 0x80
	}
	rdlen := 0
	for _, o := range opts {
		rdlen += len(o)
	}
	pad := -1
	if q.padded {
		n := len(dst) - start + 11 + rdlen + 4
		pad = (paddingBlock - n%paddingBlock) % paddingBlock
		rdlen += 4 + pad
	}
	dst = append(dst, 0, 0, 41, ednsSize>>8, ednsSize&0xFF, extRcode, 0, flags, 0, byte(rdlen>>8), byte(rdlen))
	for _, o := range opts {
		dst = append(dst, o...)
	}
	if pad >= 0 {
		dst = append(dst, 0, dns.EDNS0PADDING, byte(pad>>8), byte(pad))
		dst = append(dst, make([]byte, pad)...)
	}
	w := dst[start:]
	binary.BigEndian.PutUint16(w[10:], binary.BigEndian.Uint16(w[10:])+1)
	return dst
}

// appendError appends a bare answer with rcode to q: the query's header and
// question (when it had exactly one), and an OPT record when it had one.
func appendError(dst []byte, q *query, msg []byte, rcode int, ede []byte) []byte {
	start := len(dst)
	dst = append(dst, msg[:12]...)
	w := dst[start:]
	w[2] = w[2]&^0x06 | 0x80 // QR; no AA, no TC
	w[3] = 0x80 | byte(rcode&0xF) | b2u8(q.cd)<<4
	binary.BigEndian.PutUint16(w[4:], 0)
	binary.BigEndian.PutUint32(w[6:], 0)
	binary.BigEndian.PutUint16(w[10:], 0)
	if q.qdcount == 1 {
		binary.BigEndian.PutUint16(w[4:], 1)
		dst = append(dst, msg[q.nameOff:q.nameOff+len(q.name)+4]...)
	}
	if !q.edns {
		return dst
	}
	return appendOPT(dst, start, q, uint8(rcode>>4), ede)
}

// edeOption is an Extended DNS Error option (RFC 8914) in wire form.
func edeOption(code uint16, text string) []byte {
	b := make([]byte, 0, 6+len(text))
	b = append(b, 0, dns.EDNS0EDE)
	b = binary.BigEndian.AppendUint16(b, uint16(2+len(text)))
	b = binary.BigEndian.AppendUint16(b, code)
	return append(b, text...)
}

func b2u8(b bool) byte {
	if b {
		return 1
	}
	return 0
}
