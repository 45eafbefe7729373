package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/miekg/dns"
)

// StaleTTL is the TTL given to records in a stale answer (RFC 8767 §4).
const StaleTTL = 30

// Entry is one answer in wire form. Its message has ID 0, no OPT record and
// original TTLs; AppendTo copies it out with TTLs counted down. A Cache
// keeps a copy of what it is given and reads its copy into a caller's
// Entry.
type Entry struct {
	buf    []byte // the message, then its records' TTL offsets, 2 bytes each
	msgLen int
	ttl    uint32 // lifetime in seconds, the smallest TTL (RFC 2308 for negative answers)
	stored time.Time

	// Rcode is the full (possibly extended) response code.
	Rcode int
	// Options are EDNS options, in wire form, that go back to EDNS clients
	// (extended DNS errors); empty for most answers.
	Options []byte
}

// newEntry makes an Entry of wire (copied) and the offsets of its TTLs.
func newEntry(wire []byte, ttls []uint16) *Entry {
	buf := make([]byte, len(wire)+2*len(ttls))
	copy(buf, wire)
	for i, off := range ttls {
		binary.BigEndian.PutUint16(buf[len(wire)+2*i:], off)
	}
	return &Entry{buf: buf, msgLen: len(wire)}
}

func (e *Entry) wire() []byte { return e.buf[:e.msgLen] }

// NewEntry packs m (which must have no OPT record) into an Entry stored at now.
// Its lifetime is Lifetime(m) capped at maxTTL.
func NewEntry(m *dns.Msg, maxTTL uint32, now time.Time) (*Entry, error) {
	id := m.Id
	m.Id = 0
	wire, err := m.Pack()
	m.Id = id
	if err != nil {
		return nil, fmt.Errorf("cache: pack answer: %w", err)
	}
	ttls, err := ttlOffsets(wire)
	if err != nil {
		return nil, err
	}
	ttl := Lifetime(m)
	if ttl > maxTTL {
		ttl = maxTTL
	}
	e := newEntry(wire, ttls)
	e.ttl, e.stored, e.Rcode = ttl, now, m.Rcode
	return e, nil
}

// TTL is the entry's lifetime in seconds from when it was stored.
func (e *Entry) TTL() uint32 { return e.ttl }

// Age is the whole seconds since the entry was stored.
func (e *Entry) Age(now time.Time) uint32 {
	d := now.Sub(e.stored)
	if d <= 0 {
		return 0
	}
	s := d / time.Second
	if s > 1<<31 {
		return 1 << 31
	}
	return uint32(s)
}

// Remaining is the seconds of the entry's lifetime left at now; 0 when expired.
func (e *Entry) Remaining(now time.Time) uint32 {
	if a := e.Age(now); a < e.ttl {
		return e.ttl - a
	}
	return 0
}

// Fresh reports whether the entry is still within its lifetime at now.
func (e *Entry) Fresh(now time.Time) bool {
	return now.Sub(e.stored) < time.Duration(e.ttl)*time.Second
}

// AppendTo appends the message to dst with every TTL counted down by the
// entry's age at now (never below 0), or set to StaleTTL when stale is true.
// The message ID is left 0 for the caller to patch.
func (e *Entry) AppendTo(dst []byte, now time.Time, stale bool) []byte {
	start := len(dst)
	dst = append(dst, e.wire()...)
	w := dst[start:]
	age := e.Age(now)
	for offs := e.buf[e.msgLen:]; len(offs) >= 2; offs = offs[2:] {
		off := binary.BigEndian.Uint16(offs)
		f := w[off : off+4]
		t := binary.BigEndian.Uint32(f)
		switch {
		case stale:
			t = StaleTTL
		case t > age:
			t -= age
		default:
			t = 0
		}
		binary.BigEndian.PutUint32(f, t)
	}
	return dst
}

var errBadWire = errors.New("cache: malformed message")

// ttlOffsets walks a packed message and returns where each record's TTL is.
func ttlOffsets(w []byte) ([]uint16, error) {
	if len(w) < 12 || len(w) > 65535 {
		return nil, errBadWire
	}
	qd := int(binary.BigEndian.Uint16(w[4:]))
	rr := int(binary.BigEndian.Uint16(w[6:])) + int(binary.BigEndian.Uint16(w[8:])) + int(binary.BigEndian.Uint16(w[10:]))
	off := 12
	var err error
	for range qd {
		if off, err = skipName(w, off); err != nil {
			return nil, err
		}
		off += 4
	}
	offs := make([]uint16, 0, rr)
	for range rr {
		if off, err = skipName(w, off); err != nil {
			return nil, err
		}
		if off+10 > len(w) {
			return nil, errBadWire
		}
		offs = append(offs, uint16(off+4))
		off += 10 + int(binary.BigEndian.Uint16(w[off+8:]))
	}
	if off != len(w) {
		return nil, errBadWire
	}
	return offs, nil
}

// skipName returns the offset just past the (possibly compressed) name at off.
func skipName(w []byte, off int) (int, error) {
	for {
		if off >= len(w) {
			return 0, errBadWire
		}
		c := int(w[off])
		switch c & 0xC0 {
		case 0x00:
			if c == 0 {
				return off + 1, nil
			}
			off += 1 + c
		case 0xC0:
			if off+2 > len(w) {
				return 0, errBadWire
			}
			return off + 2, nil
		default:
			return 0, errBadWire
		}
	}
}
