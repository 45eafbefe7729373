package cache

import (
	"hash/maphash"
	"sync"
	"time"
)

const shardCount = 16

// Config sets up a Cache.
type Config struct {
	// MaxBytes bounds the answers kept, roughly in bytes. 0 means 32 MiB.
	MaxBytes int
	// StaleFor is how long past its lifetime an entry is kept to be served
	// stale (RFC 8767) when upstreams fail. 0 means none.
	StaleFor time.Duration
}

// Cache maps question keys to Entries. It is safe for concurrent use. A hit
// takes only a read lock: eviction is CLOCK (second chance), which needs a
// bit set on use rather than a list reordered under a lock.
type Cache struct {
	seed     maphash.Seed
	staleFor time.Duration
	shards   [shardCount]shard
}

type shard struct {
	mu       sync.RWMutex
	m        map[string]*Entry
	queue    []*Entry // insertion order; queue[head:] are live or replaced
	head     int
	bytes    int
	maxBytes int
}

// New makes an empty cache.
func New(cfg Config) *Cache {
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = 32 << 20
	}
	c := &Cache{seed: maphash.MakeSeed(), staleFor: max(cfg.StaleFor, 0)}
	for i := range c.shards {
		s := &c.shards[i]
		s.m = make(map[string]*Entry)
		s.maxBytes = max(cfg.MaxBytes/shardCount, 1)
	}
	return c
}

func (c *Cache) shard(key []byte) *shard {
	return &c.shards[maphash.Bytes(c.seed, key)%shardCount]
}

// Get returns the entry for key, fresh or stale, or nil. An entry past its
// stale window is dropped.
func (c *Cache) Get(key []byte, now time.Time) *Entry {
	s := c.shard(key)
	s.mu.RLock()
	e := s.m[string(key)]
	s.mu.RUnlock()
	if e == nil {
		return nil
	}
	if now.Sub(e.stored) >= time.Duration(e.ttl)*time.Second+c.staleFor {
		s.mu.Lock()
		if s.m[e.key] == e {
			delete(s.m, e.key)
			e.replaced = true // the clock hand will only discount its bytes
		}
		s.mu.Unlock()
		return nil
	}
	if !e.used.Load() {
		e.used.Store(true)
	}
	return e
}

// Put stores e under key, replacing what was there, and evicts entries
// not used since the clock hand last passed them until the shard fits.
// Entries with lifetime 0 are not stored.
func (c *Cache) Put(key []byte, e *Entry) {
	if e.ttl == 0 {
		return
	}
	if !e.held.CompareAndSwap(false, true) {
		e = e.copyForCache()
		e.held.Store(true)
	}
	e.key = string(key)
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.m[e.key]; old != nil {
		old.replaced = true
	}
	s.m[e.key] = e
	s.queue = append(s.queue, e)
	s.bytes += e.Size()
	for s.bytes > s.maxBytes && s.head < len(s.queue)-1 {
		v := s.queue[s.head]
		s.queue[s.head] = nil
		s.head++
		if !v.replaced && v.used.Load() {
			v.used.Store(false) // second chance
			s.queue = append(s.queue, v)
			continue
		}
		s.bytes -= v.Size()
		if !v.replaced {
			delete(s.m, v.key)
		}
	}
	if s.head > 1024 && s.head > len(s.queue)/2 {
		s.queue = append(s.queue[:0], s.queue[s.head:]...)
		s.head = 0
	}
}

// Len is the number of entries held.
func (c *Cache) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
