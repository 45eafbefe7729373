package cache

import (
	"encoding/binary"
	"errors"
	"time"
)

// ErrUnusual is returned by ParseEntry for a well-formed answer it does not
// take apart itself (an OPT record that is not last, a question count other
// than one): the caller can go the long way through NewEntry.
var ErrUnusual = errors.New("cache: answer needs the slow path")

const (
	typeSOA = 6
	typeOPT = 41
	typeEDE = 15 // EDNS option code of extended DNS errors
)

// ParseEntry makes an Entry straight from an upstream's answer in wire form,
// without unpacking it: the header is normalized (ID 0, RA set, TC and Z
// cleared), the OPT record is cut off (its extended rcode kept in Rcode and
// its extended errors in Options), and the lifetime follows Lifetime's
// rules. The answer's question is kept as it is; the caller checks it.
func ParseEntry(msg []byte, maxTTL uint32, now time.Time) (*Entry, error) {
	if len(msg) < 12 || len(msg) > 65535 {
		return nil, errBadWire
	}
	if binary.BigEndian.Uint16(msg[4:]) != 1 {
		return nil, ErrUnusual
	}
	truncated := msg[2]&0x02 != 0
	rcode := int(msg[3] & 0x0F)
	an := int(binary.BigEndian.Uint16(msg[6:]))
	ns := int(binary.BigEndian.Uint16(msg[8:]))
	ar := int(binary.BigEndian.Uint16(msg[10:]))
	off, err := skipName(msg, 12)
	if err != nil {
		return nil, err
	}
	off += 4
	var offsets [32]uint16 // on the stack unless there are more records
	ttls := offsets[:0]
	minTTL, negTTL := ^uint32(0), ^uint32(0)
	optStart, optEnd := -1, -1
	var options []byte
	extRcode := 0
	for i := range an + ns + ar {
		start := off
		if off, err = skipName(msg, off); err != nil {
			return nil, err
		}
		if off+10 > len(msg) {
			return nil, errBadWire
		}
		rrtype := binary.BigEndian.Uint16(msg[off:])
		ttl := binary.BigEndian.Uint32(msg[off+4:])
		rdata := off + 10
		end := rdata + int(binary.BigEndian.Uint16(msg[off+8:]))
		if end > len(msg) {
			return nil, errBadWire
		}
		if rrtype == typeOPT {
			if i < an+ns || optStart >= 0 {
				return nil, errBadWire
			}
			optStart, optEnd = start, end
			extRcode = int(msg[off+4]) << 4
			if options, err = extendedErrors(msg[rdata:end]); err != nil {
				return nil, err
			}
		} else {
			if optStart >= 0 {
				return nil, ErrUnusual // records after OPT
			}
			ttls = append(ttls, uint16(off+4))
			minTTL = min(minTTL, ttl)
			if rrtype == typeSOA && i >= an && i < an+ns && negTTL == ^uint32(0) {
				if end-rdata < 22 {
					return nil, errBadWire
				}
				negTTL = min(ttl, binary.BigEndian.Uint32(msg[end-4:]))
			}
		}
		off = end
	}
	if off != len(msg) {
		return nil, errBadWire
	}
	wire := msg
	if optStart >= 0 {
		if optEnd != len(msg) {
			return nil, ErrUnusual
		}
		wire = msg[:optStart]
		ar--
	}
	e := newEntry(wire, ttls)
	e.stored, e.Rcode, e.Options = now, extRcode|rcode, options
	w := e.buf
	w[0], w[1] = 0, 0
	w[2] = w[2]&^0x02 | 0x80 // QR; no TC
	w[3] = w[3]&^0x4F | 0x80 // RA; no Z; rcode below
	w[3] |= byte(rcode)
	binary.BigEndian.PutUint16(w[10:], uint16(ar))
	switch full := e.Rcode; {
	case truncated:
	case full == 0 && an > 0:
		e.ttl = minTTL
	case (full == 0 || full == 3) && negTTL != ^uint32(0):
		e.ttl = negTTL
	}
	e.ttl = min(e.ttl, maxTTL)
	return e, nil
}

// extendedErrors returns the extended DNS error options among OPT rdata.
func extendedErrors(opts []byte) ([]byte, error) {
	var out []byte
	for len(opts) > 0 {
		if len(opts) < 4 {
			return nil, errBadWire
		}
		n := 4 + int(binary.BigEndian.Uint16(opts[2:]))
		if n > len(opts) {
			return nil, errBadWire
		}
		if binary.BigEndian.Uint16(opts) == typeEDE && n >= 6 && n <= 512 {
			out = append(out, opts[:n]...)
		}
		opts = opts[n:]
	}
	return out, nil
}
