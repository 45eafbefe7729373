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

// Cache maps question keys to Entries. It is safe for concurrent use.
type Cache struct {
	seed     maphash.Seed
	staleFor time.Duration
	shards   [shardCount]shard
}

type shard struct {
	mu       sync.Mutex
	m        map[string]*node
	lru      node // sentinel: lru.next is the most recently used
	bytes    int
	maxBytes int
}

type node struct {
	key        string
	e          *Entry
	prev, next *node
}

// New makes an empty cache.
func New(cfg Config) *Cache {
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = 32 << 20
	}
	c := &Cache{seed: maphash.MakeSeed(), staleFor: max(cfg.StaleFor, 0)}
	for i := range c.shards {
		s := &c.shards[i]
		s.m = make(map[string]*node)
		s.lru.next, s.lru.prev = &s.lru, &s.lru
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
	s.mu.Lock()
	n := s.m[string(key)]
	if n == nil {
		s.mu.Unlock()
		return nil
	}
	if now.Sub(n.e.stored) >= time.Duration(n.e.ttl)*time.Second+c.staleFor {
		s.remove(n)
		s.mu.Unlock()
		return nil
	}
	if s.lru.next != n {
		s.unlink(n)
		s.pushFront(n)
	}
	s.mu.Unlock()
	return n.e
}

// Put stores e under key, replacing what was there, and evicts the least
// recently used entries of its shard until it fits. Entries with lifetime 0
// are not stored.
func (c *Cache) Put(key []byte, e *Entry) {
	if e.ttl == 0 {
		return
	}
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.m[string(key)]; old != nil {
		s.remove(old)
	}
	n := &node{key: string(key), e: e}
	s.m[n.key] = n
	s.pushFront(n)
	s.bytes += e.Size()
	for s.bytes > s.maxBytes && s.lru.prev != n {
		s.remove(s.lru.prev)
	}
}

// Len is the number of entries held.
func (c *Cache) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

func (s *shard) remove(n *node) {
	s.unlink(n)
	delete(s.m, n.key)
	s.bytes -= n.e.Size()
}

func (s *shard) unlink(n *node) {
	n.prev.next, n.next.prev = n.next, n.prev
}

func (s *shard) pushFront(n *node) {
	n.prev, n.next = &s.lru, s.lru.next
	s.lru.next.prev = n
	s.lru.next = n
}
