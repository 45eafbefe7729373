package doh

import (
	"github.com/miekg/dns"
	"github.com/porta443/porta/doh/cache"
)

// maxKeyLen is the longest cache key: a 255-byte name, type, class, flags.
const maxKeyLen = 255 + 5

// hitBuffer is scratch space for one query's cache key and the entry it
// reads, kept in Resolver.hitBuffers: with it a hit allocates nothing
// (parseQuery's keys escape, so a buffer on the stack cannot do), which
// saves 40% of AppendCached's time.
type hitBuffer struct {
	key [maxKeyLen]byte
	hit cache.Entry
}

// hitBuffer lends a hitBuffer, and a query that uses it, until put back in
// r.hitBuffers.
func (r *Resolver) hitBuffer() (*hitBuffer, query) {
	b, _ := r.hitBuffers.Get().(*hitBuffer)
	if b == nil {
		b = new(hitBuffer)
	}
	// The key never grows: questionName caps names at 255 bytes.
	return b, query{keyBytes: b.key[:0], hit: &b.hit}
}

// AppendCached appends to dst the answer to the query msg (in wire form)
// when, and only when, it is a fresh hit in the cache whose answer takes at
// most maxLen bytes; it is then exactly what Exchange would answer. Anything
// else (a miss, a stale or too big answer, a malformed query or one the
// resolver answers itself, such as FORMERR) returns dst unchanged and false,
// for the caller to take the slow way. It never blocks and never asks an
// upstream: a local server can call it in its read loop. A hit counts
// towards prefetching as one through Exchange does.
func (r *Resolver) AppendCached(dst, msg []byte, maxLen int) ([]byte, bool) {
	out, _, ok := r.appendCached(dst, msg, maxLen, false)
	return out, ok
}

// AppendCachedUDP is AppendCached for a query that came over UDP: the
// answer must fit the asker's UDP payload size (RFC 6891 §6.2.5: its EDNS
// size, at least 512; 512 without an OPT record), which it returns in any
// case, for the caller to truncate a slower answer to; 512 for a message
// that is not a well-formed query. The message is read once for both.
func (r *Resolver) AppendCachedUDP(dst, msg []byte) ([]byte, int, bool) {
	return r.appendCached(dst, msg, 0, true)
}

// appendCached is AppendCached, with maxLen the asker's UDP size when udp
// is set; it returns that size too.
func (r *Resolver) appendCached(dst, msg []byte, maxLen int, udp bool) ([]byte, int, bool) {
	b, q := r.hitBuffer()
	defer r.hitBuffers.Put(b)
	if parseQuery(msg, &q) != nil {
		return dst, dns.MinMsgSize, false
	}
	size := q.udpSize()
	if udp {
		maxLen = size
	}
	if r.cache == nil || q.qdcount != 1 || q.opcode != dns.OpcodeQuery ||
		(q.edns && q.version != 0) || q.qtype == dns.TypeAXFR || q.qtype == dns.TypeIXFR {
		return dst, size, false
	}
	now := r.now()
	e := q.hit
	if !r.cache.Get(q.keyBytes, now, e) || !e.Fresh(now) {
		return dst, size, false
	}
	out := appendAnswer(dst, &q, msg, e, now, false)
	if len(out)-len(dst) > maxLen {
		return out[:len(dst)], size, false
	}
	r.count(AnswerHit)
	r.maybePrefetch(&q, msg, e, now)
	return out, size, true
}
