package cache

import (
	"encoding/binary"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

const (
	shardCount = 16
	// segments is how many pieces a shard's records are kept in; one is
	// cleared for reuse at a time.
	segments = 8
)

// Config sets up a Cache.
type Config struct {
	// MaxBytes bounds the memory the records take, in bytes. 0 means 32 MiB.
	// The index adds 20 to 40 bytes a record (a Go map of 12-byte slots).
	MaxBytes int
	// StaleFor is how long past its lifetime an entry is kept to be served
	// stale (RFC 8767) when upstreams fail. 0 means none.
	StaleFor time.Duration
}

// Cache maps question keys to answers in wire form. It is safe for
// concurrent use.
//
// The answers are not objects on the heap but records in a few large byte
// slices, and a shard's index maps a 64-bit hash of a key (a map with no
// pointers in it) to where its record starts. A full cache holds a hundred
// thousand answers and more, and every object and pointer in it was work
// for every garbage collection: a full cache of Entry objects took 8% more
// CPU per DoH miss than a nearly empty one. A record repeats its key, which
// Get compares, so two keys with the same hash cost a miss, never a wrong
// answer; the hash is seeded at random, so they cannot be chosen.
//
// Eviction is CLOCK (second chance) by segments. New records are appended
// to a shard's current segment; when it is full, the oldest segment
// becomes the current one, keeping (moved to its start) the records used
// since it was last cleared and dropping the rest.
type Cache struct {
	seed     maphash.Seed
	staleFor time.Duration
	base     time.Time // records keep their store time as an offset from it
	shards   [shardCount]shard
}

type shard struct {
	mu      sync.RWMutex      // Get reads under RLock; it marks records used atomically
	index   map[uint64]uint32 // key hash → the record's offset: segment×segSize + position
	segs    [segments][]byte  // each grown as records are written to it
	fill    [segments]int     // bytes of records in each segment
	cur     int               // the segment new records go to
	segSize int
}

// A record is a header, then the key, the message, its TTL offsets and the
// EDNS options, padded to a multiple of 4 bytes. The header's fields,
// little-endian:
const (
	rSize    = 0  // uint32: the record's length
	rHash    = 4  // uint64: the key's hash
	rStored  = 12 // int64: when the entry was stored, ns since Cache.base
	rTTL     = 20 // uint32: lifetime in seconds
	rRcode   = 24 // uint16: the full response code
	rKey     = 26 // uint16: key length
	rMsg     = 28 // uint16: message length
	rOffs    = 30 // uint16: bytes of TTL offsets
	rOpts    = 32 // uint16: bytes of EDNS options; 2 bytes unused
	rFlags   = 36 // uint32, only ever read and written atomically
	rHdrSize = 40

	flagUsed       = 1 // read since its segment was last cleared
	flagHit        = 2 // ClaimPrefetch has counted a hit
	flagPrefetched = 4 // ClaimPrefetch said yes
)

// flags is record r's flags word. Records start at multiples of 4 in a
// segment, whose array the allocator aligns to 8, so the word is aligned.
func flags(r []byte) *uint32 { return (*uint32)(unsafe.Pointer(&r[rFlags])) }

var le = binary.LittleEndian

// New makes an empty cache.
func New(cfg Config) *Cache {
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = 32 << 20
	}
	// Offsets in a shard are uint32: no shard holds more than 1 GiB.
	perShard := min(max(cfg.MaxBytes/shardCount, segments), 1<<30)
	c := &Cache{seed: maphash.MakeSeed(), staleFor: max(cfg.StaleFor, 0), base: time.Now()}
	for i := range c.shards {
		s := &c.shards[i]
		s.index = make(map[uint64]uint32)
		s.segSize = perShard / segments
	}
	return c
}

func (c *Cache) shard(h uint64) *shard { return &c.shards[h%shardCount] }

// record returns key's record in s, whose mu is held, found by key's hash
// h; nil when there is none, or when h leads to another key's.
func (s *shard) record(h uint64, key []byte) []byte {
	off, ok := s.index[h]
	if !ok {
		return nil
	}
	r := s.segs[int(off)/s.segSize][int(off)%s.segSize:]
	r = r[:le.Uint32(r[rSize:])]
	if string(r[rHdrSize:rHdrSize+int(le.Uint16(r[rKey:]))]) != string(key) {
		return nil
	}
	return r
}

func (c *Cache) stored(r []byte) time.Time {
	return c.base.Add(time.Duration(le.Uint64(r[rStored:])))
}

// expired reports whether record r is past its stale window at now.
func (c *Cache) expired(r []byte, now time.Time) bool {
	return now.Sub(c.stored(r)) >= time.Duration(le.Uint32(r[rTTL:]))*time.Second+c.staleFor
}

// Get reads the entry for key, fresh or stale, into e, reusing e's
// memory, and reports whether there was one. An entry past its stale
// window is dropped.
func (c *Cache) Get(key []byte, now time.Time, e *Entry) bool {
	h := maphash.Bytes(c.seed, key)
	s := c.shard(h)
	s.mu.RLock()
	r := s.record(h, key)
	if r == nil {
		s.mu.RUnlock()
		return false
	}
	if c.expired(r, now) {
		s.mu.RUnlock()
		s.mu.Lock()
		if r := s.record(h, key); r != nil && c.expired(r, now) {
			delete(s.index, h)
		}
		s.mu.Unlock()
		return false
	}
	if f := flags(r); atomic.LoadUint32(f)&flagUsed == 0 {
		atomic.OrUint32(f, flagUsed)
	}
	msg, offs := int(le.Uint16(r[rMsg:])), int(le.Uint16(r[rOffs:]))
	start := rHdrSize + int(le.Uint16(r[rKey:]))
	body := r[start : start+msg+offs+int(le.Uint16(r[rOpts:]))]
	e.buf = append(e.buf[:0], body...)
	e.Options = e.buf[msg+offs:]
	e.buf = e.buf[:msg+offs]
	e.msgLen = msg
	e.ttl = le.Uint32(r[rTTL:])
	e.stored = c.stored(r)
	e.Rcode = int(le.Uint16(r[rRcode:]))
	s.mu.RUnlock()
	return true
}

// ClaimPrefetch counts a hit on key's entry, the one stored at e.stored,
// and reports true on the second hit: once, to the caller that should
// refresh it. The resolver counts only hits late in an entry's lifetime.
func (c *Cache) ClaimPrefetch(key []byte, e *Entry) bool {
	h := maphash.Bytes(c.seed, key)
	s := c.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.record(h, key)
	if r == nil || !c.stored(r).Equal(e.stored) {
		return false
	}
	// Under the write lock no Get changes the flags.
	f := flags(r)
	switch v := atomic.LoadUint32(f); {
	case v&flagPrefetched != 0:
		return false
	case v&flagHit == 0:
		atomic.StoreUint32(f, v|flagHit)
		return false
	default:
		atomic.StoreUint32(f, v|flagPrefetched)
		return true
	}
}

// Put stores a copy of e under key, replacing what was there, and makes
// room by CLOCK. Entries with lifetime 0, and any too big for a segment
// (a sixteenth of MaxBytes over 8), are not stored.
func (c *Cache) Put(key string, e *Entry) {
	n := recordSize(key, e)
	h := maphash.String(c.seed, key)
	s := c.shard(h)
	if e.ttl == 0 || n > s.segSize {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.fill[s.cur]+n > s.segSize {
		c.clear(s, e.stored)
	}
	pos := s.fill[s.cur]
	if pos+n > len(s.segs[s.cur]) {
		s.grow(pos + n)
	}
	r := s.segs[s.cur][pos : pos+n]
	le.PutUint32(r[rSize:], uint32(n))
	le.PutUint64(r[rHash:], h)
	le.PutUint64(r[rStored:], uint64(e.stored.Sub(c.base)))
	le.PutUint32(r[rTTL:], e.ttl)
	le.PutUint16(r[rRcode:], uint16(e.Rcode))
	le.PutUint16(r[rKey:], uint16(len(key)))
	le.PutUint16(r[rMsg:], uint16(e.msgLen))
	le.PutUint16(r[rOffs:], uint16(len(e.buf)-e.msgLen))
	le.PutUint16(r[rOpts:], uint16(len(e.Options)))
	atomic.StoreUint32(flags(r), 0)
	p := rHdrSize
	p += copy(r[p:], key)
	p += copy(r[p:], e.buf)
	copy(r[p:], e.Options)
	s.fill[s.cur] += n
	s.index[h] = uint32(s.cur*s.segSize + pos)
}

// grow makes s's current segment hold at least need bytes. A segment
// starts at 4 KiB and doubles up to segSize, so that a cache with a few
// answers in it (a laptop's, a quiet server's) takes a few pages, not 8
// segments of a shard's share of MaxBytes each.
func (s *shard) grow(need int) {
	old := s.segs[s.cur]
	seg := make([]byte, min(s.segSize, max(need, 2*len(old), 4096)))
	copy(seg, old[:s.fill[s.cur]])
	s.segs[s.cur] = seg
}

// recordSize is what e takes in a segment under key: header, key, data,
// padded to 4 bytes.
func recordSize(key string, e *Entry) int {
	return (rHdrSize + len(key) + len(e.buf) + len(e.Options) + 3) &^ 3
}

// clear moves s, whose mu is held, on to its oldest segment and clears it
// for new records: of those in it, the ones still in the index and used
// since the last clearing (and not past their stale window at now) move
// to its start, unmarked; the others go.
func (c *Cache) clear(s *shard, now time.Time) {
	s.cur = (s.cur + 1) % segments
	seg, base := s.segs[s.cur], s.cur*s.segSize
	kept := 0
	for pos := 0; pos < s.fill[s.cur]; {
		r := seg[pos : pos+int(le.Uint32(seg[pos+rSize:]))]
		h := le.Uint64(r[rHash:])
		if off, ok := s.index[h]; ok && int(off) == base+pos {
			if f := flags(r); atomic.LoadUint32(f)&flagUsed != 0 && !c.expired(r, now) {
				atomic.AndUint32(f, ^uint32(flagUsed))
				copy(seg[kept:], r)
				s.index[h] = uint32(base + kept)
				kept += len(r)
			} else {
				delete(s.index, h)
			}
		}
		pos += len(r)
	}
	s.fill[s.cur] = kept
}

// Len is the number of entries held.
func (c *Cache) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.index)
		s.mu.Unlock()
	}
	return n
}
