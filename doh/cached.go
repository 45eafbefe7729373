package doh

import (
	"encoding/binary"

	"github.com/miekg/dns"
)

// maxKeyLen is the longest cache key: a 255-byte name, type, class, flags.
const maxKeyLen = 255 + 5

// keyBuffer is scratch space for one AppendCached query's cache key, kept
// in Resolver.keyBuffers: with it a hit allocates nothing (parseQuery's keys
// escape, so a buffer on the stack cannot do), which saves 40% of its time.
type keyBuffer = [maxKeyLen]byte

// AppendCached appends to dst the answer to the query msg (in wire form)
// when, and only when, it is a fresh hit in the cache whose answer takes at
// most maxLen bytes; it is then exactly what Exchange would answer. Anything
// else (a miss, a stale or too big answer, a malformed query or one the
// resolver answers itself, such as FORMERR) returns dst unchanged and false,
// for the caller to take the slow way. It never blocks and never asks an
// upstream: a local server can call it in its read loop. A hit counts
// towards prefetching as one through Exchange does.
func (r *Resolver) AppendCached(dst, msg []byte, maxLen int) ([]byte, bool) {
	if r.cache == nil {
		return dst, false
	}
	key, _ := r.keyBuffers.Get().(*keyBuffer)
	if key == nil {
		key = new(keyBuffer)
	}
	defer r.keyBuffers.Put(key)
	q := query{keyBytes: key[:0]} // never grows: questionName caps names at 255 bytes
	if parseQuery(msg, &q) != nil || q.qdcount != 1 || q.opcode != dns.OpcodeQuery ||
		(q.edns && q.version != 0) || q.qtype == dns.TypeAXFR || q.qtype == dns.TypeIXFR {
		return dst, false
	}
	now := r.now()
	e := r.cache.Get(q.keyBytes, now)
	if e == nil || !e.Fresh(now) {
		return dst, false
	}
	out := appendAnswer(dst, &q, msg, e, now, false)
	if len(out)-len(dst) > maxLen {
		return out[:len(dst)], false
	}
	r.maybePrefetch(&q, msg, e, now)
	return out, true
}

// UDPSize is the most a UDP asker of the query msg takes (RFC 6891 §6.2.5):
// its EDNS payload size, at least 512; 512 when it has no OPT record or
// cannot be read.
func UDPSize(msg []byte) int {
	if len(msg) < 12 || binary.BigEndian.Uint16(msg[10:]) == 0 {
		return dns.MinMsgSize
	}
	off := 12
	for range binary.BigEndian.Uint16(msg[4:]) {
		end, err := questionName(msg, off)
		if err != nil {
			return dns.MinMsgSize
		}
		off = end + 4
	}
	anns := int(binary.BigEndian.Uint16(msg[6:])) + int(binary.BigEndian.Uint16(msg[8:]))
	for i := range anns + int(binary.BigEndian.Uint16(msg[10:])) {
		start := off
		end, rdata, err := skipRR(msg, off)
		if err != nil {
			return dns.MinMsgSize
		}
		if i >= anns && msg[start] == 0 && binary.BigEndian.Uint16(msg[start+1:]) == dns.TypeOPT {
			return max(int(binary.BigEndian.Uint16(msg[rdata-8:])), dns.MinMsgSize)
		}
		off = end
	}
	return dns.MinMsgSize
}
