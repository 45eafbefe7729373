package doh

import (
	"encoding/binary"
	"errors"

	"github.com/miekg/dns"
	"github.com/porta443/porta/doh/cache"
)

var (
	errMalformed = errors.New("doh: malformed DNS message")
	errNotQuery  = errors.New("doh: DNS message is a response, not a query")
)

// query is what the resolver needs from a query message, read straight from
// its wire form.
type query struct {
	id      uint16
	opcode  int
	rd      bool
	ad      bool
	cd      bool
	qdcount int

	nameOff int // the question name's offset in the message
	name    []byte
	qtype   uint16
	qclass  uint16

	edns     bool
	udp      uint16 // the OPT record's UDP payload size
	do       bool
	version  uint8
	padded   bool // the query carried an EDNS Padding option (RFC 8467)
	hasECS   bool // the query carried an EDNS Client Subnet option (never forwarded)
	keyBytes []byte
	hit      *cache.Entry // where a cache hit is read into; made when first needed
}

// entry is q.hit, made if need be: parseQuery keeps it, so that a reused
// query reuses its memory.
func (q *query) entry() *cache.Entry {
	if q.hit == nil {
		q.hit = new(cache.Entry)
	}
	return q.hit
}

// parseQuery reads msg into q, reusing q.keyBytes. It fails for anything
// that is not a well-formed DNS query: short or trailing bytes, a response,
// a compressed or overlong question name, a second OPT record.
// A query with no question or several is well-formed; the resolver answers
// it FORMERR.
func parseQuery(msg []byte, q *query) error {
	if len(msg) < 12 || len(msg) > MaxMessageSize {
		return errMalformed
	}
	key := q.keyBytes[:0]
	*q = query{keyBytes: key, hit: q.hit}
	q.id = binary.BigEndian.Uint16(msg)
	f1, f2 := msg[2], msg[3]
	if f1&0x80 != 0 {
		return errNotQuery
	}
	q.opcode = int(f1>>3) & 0xF
	q.rd = f1&0x01 != 0
	q.ad = f2&0x20 != 0
	q.cd = f2&0x10 != 0
	q.qdcount = int(binary.BigEndian.Uint16(msg[4:]))
	an := int(binary.BigEndian.Uint16(msg[6:]))
	ns := int(binary.BigEndian.Uint16(msg[8:]))
	ar := int(binary.BigEndian.Uint16(msg[10:]))
	off := 12
	for i := range q.qdcount {
		end, err := questionName(msg, off)
		if err != nil {
			return err
		}
		if end+4 > len(msg) {
			return errMalformed
		}
		if i == 0 {
			q.nameOff, q.name = off, msg[off:end]
			q.qtype = binary.BigEndian.Uint16(msg[end:])
			q.qclass = binary.BigEndian.Uint16(msg[end+2:])
		}
		off = end + 4
	}
	for range an + ns {
		var err error
		if off, _, err = skipRR(msg, off); err != nil {
			return err
		}
	}
	for range ar {
		start := off
		var err error
		if off, _, err = skipRR(msg, off); err != nil {
			return err
		}
		if msg[start] != 0 || binary.BigEndian.Uint16(msg[start+1:]) != dns.TypeOPT {
			continue
		}
		if q.edns {
			return errMalformed // RFC 6891 §6.1.1: at most one OPT
		}
		if err := q.parseOPT(msg[start+1 : off]); err != nil {
			return err
		}
	}
	if off != len(msg) {
		return errMalformed
	}
	if q.qdcount == 1 {
		q.keyBytes = cache.AppendKey(key, q.name, q.qtype, q.qclass, q.do, q.cd)
	}
	return nil
}

// udpSize is the most a UDP asker of q takes (RFC 6891 §6.2.5): its EDNS
// payload size, at least 512; 512 without an OPT record.
func (q *query) udpSize() int {
	if !q.edns {
		return dns.MinMsgSize
	}
	return max(int(q.udp), dns.MinMsgSize)
}

// parseOPT reads an OPT record from its type field on.
func (q *query) parseOPT(rr []byte) error {
	q.edns = true
	q.udp = binary.BigEndian.Uint16(rr[2:])
	q.version = rr[5]
	q.do = rr[6]&0x80 != 0
	opts := rr[10:]
	for len(opts) > 0 {
		if len(opts) < 4 {
			return errMalformed
		}
		code := binary.BigEndian.Uint16(opts)
		n := int(binary.BigEndian.Uint16(opts[2:]))
		if 4+n > len(opts) {
			return errMalformed
		}
		switch code {
		case dns.EDNS0PADDING:
			q.padded = true
		case dns.EDNS0SUBNET:
			q.hasECS = true
		}
		opts = opts[4+n:]
	}
	return nil
}

// questionName returns the end of an uncompressed name of at most 255 bytes.
func questionName(msg []byte, off int) (int, error) {
	start := off
	for {
		if off >= len(msg) {
			return 0, errMalformed
		}
		c := int(msg[off])
		if c&0xC0 != 0 {
			return 0, errMalformed
		}
		off += 1 + c
		if off-start > 255 {
			return 0, errMalformed
		}
		if c == 0 {
			return off, nil
		}
	}
}

// skipRR returns the end of the record at off and its rdata's offset.
func skipRR(msg []byte, off int) (end, rdata int, err error) {
	for {
		if off >= len(msg) {
			return 0, 0, errMalformed
		}
		c := int(msg[off])
		if c == 0 {
			off++
			break
		}
		if c&0xC0 == 0xC0 {
			off += 2
			break
		}
		if c&0xC0 != 0 {
			return 0, 0, errMalformed
		}
		off += 1 + c
	}
	if off+10 > len(msg) {
		return 0, 0, errMalformed
	}
	rdata = off + 10
	end = rdata + int(binary.BigEndian.Uint16(msg[off+8:]))
	if end > len(msg) {
		return 0, 0, errMalformed
	}
	return end, rdata, nil
}
