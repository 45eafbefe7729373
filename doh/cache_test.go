package doh

import (
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/porta443/porta/doh/cache"
)

// newCachingResolver is a resolver on a fake clock.
func newCachingResolver(t *testing.T, up *testUpstream, cfg ResolverConfig) (*Resolver, *fakeClock) {
	t.Helper()
	cfg.Upstreams = []string{"udp://" + up.Addr}
	r := newTestResolver(t, cfg)
	clock := newFakeClock()
	r.now = clock.Now
	return r, clock
}

func TestCacheTTLCountsDown(t *testing.T) {
	up := newTestUpstream(t)
	r, clock := newCachingResolver(t, up, ResolverConfig{NoPrefetch: true})
	first := exchange(t, r, newQuery("two.example", dns.TypeA))
	if first.Answer[0].Header().Ttl != 300 || first.Answer[1].Header().Ttl != 60 {
		t.Fatalf("first answer TTLs: %v", first)
	}
	clock.Advance(45*time.Second + 500*time.Millisecond)
	second := exchange(t, r, newQuery("two.example", dns.TypeA))
	if got := []uint32{second.Answer[0].Header().Ttl, second.Answer[1].Header().Ttl}; got[0] != 255 || got[1] != 15 {
		t.Fatalf("TTLs after 45.5 s: %v, want [255 15]", got)
	}
	if n := up.queries.Load(); n != 1 {
		t.Fatalf("upstream asked %d times, want 1", n)
	}
	// The entry lives as long as its smallest TTL.
	clock.Advance(15 * time.Second)
	third := exchange(t, r, newQuery("two.example", dns.TypeA))
	if n := up.queries.Load(); n != 2 {
		t.Fatalf("after the smallest TTL ran out the upstream was asked %d times, want 2", n)
	}
	if third.Answer[1].Header().Ttl != 60 {
		t.Fatalf("refetched TTLs: %v", third)
	}
}

func TestCacheKey(t *testing.T) {
	up := newTestUpstream(t)
	r, _ := newCachingResolver(t, up, ResolverConfig{})
	ask := func(name string, qtype uint16, do, cd bool) *dns.Msg {
		m := newQuery(name, qtype)
		m.CheckingDisabled = cd
		if do {
			m.SetEdns0(1232, true)
		}
		return exchange(t, r, m)
	}
	steps := []struct {
		name    string
		qtype   uint16
		do, cd  bool
		queries int64 // upstream queries after this step
	}{
		{"www.example", dns.TypeA, false, false, 1},
		{"WWW.Example", dns.TypeA, false, false, 1}, // case-insensitive
		{"www.example", dns.TypeAAAA, false, false, 2},
		{"www.example", dns.TypeA, true, false, 3},
		{"www.example", dns.TypeA, false, true, 4},
		{"www.example", dns.TypeA, true, true, 5},
		{"wWw.eXample", dns.TypeA, true, true, 5},
		{"www2.example", dns.TypeA, false, false, 6},
	}
	for _, s := range steps {
		resp := ask(s.name, s.qtype, s.do, s.cd)
		if n := up.queries.Load(); n != s.queries {
			t.Fatalf("after %s %s do=%v cd=%v: %d upstream queries, want %d", s.name, dns.TypeToString[s.qtype], s.do, s.cd, n, s.queries)
		}
		if resp.Question[0].Name != dns.Fqdn(s.name) {
			t.Fatalf("question echoed as %q, asked %q", resp.Question[0].Name, s.name)
		}
		if resp.CheckingDisabled != s.cd || (resp.IsEdns0() != nil) != s.do {
			t.Fatalf("answer flags CD=%v EDNS=%v for a query CD=%v DO=%v", resp.CheckingDisabled, resp.IsEdns0() != nil, s.cd, s.do)
		}
	}
}

func TestCacheHitIsWireCopy(t *testing.T) {
	up := newTestUpstream(t)
	r, clock := newCachingResolver(t, up, ResolverConfig{})
	exchange(t, r, newQuery("www.example", dns.TypeA))
	clock.Advance(10 * time.Second)
	m := newQuery("WwW.ExAmPlE", dns.TypeA)
	m.Id = 0xBEEF
	msg, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	var q query
	if err := parseQuery(msg, &q); err != nil {
		t.Fatal(err)
	}
	entry := new(cache.Entry)
	if !r.cache.Get(q.keyBytes, clock.Now(), entry) {
		t.Fatal("no cache entry after a query")
	}
	out, maxAge, err := r.answer(t.Context(), nil, msg, &q)
	if err != nil {
		t.Fatal(err)
	}
	if maxAge != 290 {
		t.Fatalf("max-age %d, want 290", maxAge)
	}
	// The answer is the entry's bytes with ID, flags, question case and
	// TTLs patched: same length, nothing re-packed.
	stored := entry.AppendTo(nil, clock.Now(), false)
	if len(out) != len(stored) {
		t.Fatalf("hit is %d bytes, entry %d", len(out), len(stored))
	}
	if out[0] != 0xBE || out[1] != 0xEF {
		t.Fatalf("ID not patched: % x", out[:2])
	}
	resp := new(dns.Msg)
	if err := resp.Unpack(out); err != nil {
		t.Fatal(err)
	}
	if resp.Question[0].Name != "WwW.ExAmPlE." || resp.Answer[0].Header().Ttl != 290 {
		t.Fatalf("hit: %v", resp)
	}
	if n := up.queries.Load(); n != 1 {
		t.Fatalf("upstream asked %d times, want 1", n)
	}
}

func TestCacheNegative(t *testing.T) {
	up := newTestUpstream(t)
	r, clock := newCachingResolver(t, up, ResolverConfig{NoPrefetch: true})
	// nx: SOA TTL 300, MINIMUM 60 → 60 s. nodata: SOA TTL 30, MINIMUM 600 → 30 s.
	for _, tt := range []struct {
		name string
		ttl  time.Duration
	}{{"nx.example", 60 * time.Second}, {"nodata.example", 30 * time.Second}} {
		before := up.queries.Load()
		exchange(t, r, newQuery(tt.name, dns.TypeA))
		clock.Advance(tt.ttl - time.Second)
		exchange(t, r, newQuery(tt.name, dns.TypeA))
		if n := up.queries.Load() - before; n != 1 {
			t.Fatalf("%s: %d upstream queries within its negative TTL, want 1", tt.name, n)
		}
		clock.Advance(time.Second)
		exchange(t, r, newQuery(tt.name, dns.TypeA))
		if n := up.queries.Load() - before; n != 2 {
			t.Fatalf("%s: %d upstream queries after its negative TTL, want 2", tt.name, n)
		}
	}
	// SERVFAIL and REFUSED are not cached.
	for _, name := range []string{"fail.example", "refused.example"} {
		before := up.queries.Load()
		exchange(t, r, newQuery(name, dns.TypeA))
		exchange(t, r, newQuery(name, dns.TypeA))
		if n := up.queries.Load() - before; n != 2 {
			t.Fatalf("%s: %d upstream queries for 2 asks, want 2 (not cached)", name, n)
		}
	}
}

func TestCacheServesStale(t *testing.T) {
	up := newTestUpstream(t)
	up.setTTL(10)
	r, clock := newCachingResolver(t, up, ResolverConfig{NoPrefetch: true, StaleAfter: time.Minute})
	exchange(t, r, newQuery("www.example", dns.TypeA))
	up.setMode("fail")
	clock.Advance(20 * time.Second)
	m := newQuery("www.example", dns.TypeA)
	m.SetEdns0(1232, false)
	resp := exchange(t, r, m)
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 || resp.Answer[0].Header().Ttl != 30 {
		t.Fatalf("stale answer: %v", resp)
	}
	if ede := findEDE(resp); ede == nil || ede.InfoCode != dns.ExtendedErrorCodeStaleAnswer {
		t.Fatalf("stale answer without the Stale Answer extended error: %v", resp)
	}
	// Without EDNS there is no OPT record to carry the extended error.
	if resp := exchange(t, r, newQuery("www.example", dns.TypeA)); resp.IsEdns0() != nil || len(resp.Answer) != 1 {
		t.Fatalf("stale answer to a plain query: %v", resp)
	}
	// Past the stale window the entry is gone.
	clock.Advance(25 * time.Hour)
	if resp := exchange(t, r, newQuery("www.example", dns.TypeA)); resp.Rcode != dns.RcodeServerFailure {
		t.Fatalf("past the stale window: %v", resp)
	}
	// A fresh answer replaces the stale one.
	up.setMode("")
	if resp := exchange(t, r, newQuery("www.example", dns.TypeA)); resp.Answer[0].Header().Ttl != 10 {
		t.Fatalf("after recovery: %v", resp)
	}
}

func TestCacheServesStaleWhenSlow(t *testing.T) {
	up := newTestUpstream(t)
	up.setTTL(10)
	r, clock := newCachingResolver(t, up, ResolverConfig{NoPrefetch: true, StaleAfter: 50 * time.Millisecond, Timeout: 30 * time.Second, AttemptTimeout: 30 * time.Second})
	exchange(t, r, newQuery("www.example", dns.TypeA))
	up.setMode("drop")
	clock.Advance(20 * time.Second)
	start := time.Now()
	resp := exchange(t, r, newQuery("www.example", dns.TypeA))
	if resp.Answer[0].Header().Ttl != 30 {
		t.Fatalf("want a stale answer: %v", resp)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("stale answer took %v; StaleAfter is 50 ms", took)
	}
}

func TestCachePrefetches(t *testing.T) {
	up := newTestUpstream(t)
	up.setTTL(100)
	r, clock := newCachingResolver(t, up, ResolverConfig{})
	exchange(t, r, newQuery("www.example", dns.TypeA)) // miss
	exchange(t, r, newQuery("www.example", dns.TypeA)) // early hit: no prefetch
	clock.Advance(95 * time.Second)
	exchange(t, r, newQuery("www.example", dns.TypeA)) // first hit in the last tenth
	time.Sleep(20 * time.Millisecond)                  // a prefetch would have started
	if n := up.queries.Load(); n != 1 {
		t.Fatalf("%d upstream queries after one late hit, want 1", n)
	}
	resp := exchange(t, r, newQuery("www.example", dns.TypeA)) // second: prefetch
	if ttl := resp.Answer[0].Header().Ttl; ttl != 5 {
		t.Fatalf("hit before prefetch had TTL %d, want 5", ttl)
	}
	waitFor(t, "the prefetch", func() bool { return up.queries.Load() == 2 })
	waitFor(t, "the prefetch to land", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.flights) == 0
	})
	clock.Advance(10 * time.Second) // past the old expiry
	resp = exchange(t, r, newQuery("www.example", dns.TypeA))
	if n := up.queries.Load(); n != 2 {
		t.Fatalf("prefetched entry missed: %d upstream queries", n)
	}
	if ttl := resp.Answer[0].Header().Ttl; ttl != 90 {
		t.Fatalf("prefetched answer TTL %d, want 90", ttl)
	}
}

func TestCacheOff(t *testing.T) {
	up := newTestUpstream(t)
	r, _ := newCachingResolver(t, up, ResolverConfig{CacheBytes: -1})
	exchange(t, r, newQuery("www.example", dns.TypeA))
	exchange(t, r, newQuery("www.example", dns.TypeA))
	if n := up.queries.Load(); n != 2 {
		t.Fatalf("with the cache off: %d upstream queries, want 2", n)
	}
}
