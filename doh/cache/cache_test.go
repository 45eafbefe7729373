package cache

import (
	"fmt"
	"hash/maphash"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func answer(name string, ttls ...uint32) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	m.Response = true
	m.Compress = true
	for i, ttl := range ttls {
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: m.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: net.IPv4(192, 0, 2, byte(i))})
	}
	return m
}

func TestEntryCountsDown(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	m := answer("www.example", 300, 60)
	m.Ns = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 100}, Ns: "ns.example."}}
	e, err := NewEntry(m, 86400, now)
	if err != nil {
		t.Fatal(err)
	}
	if e.TTL() != 60 {
		t.Fatalf("lifetime %d, want the smallest TTL 60", e.TTL())
	}
	for _, tt := range []struct {
		after time.Duration
		stale bool
		want  []uint32
	}{
		{0, false, []uint32{300, 60, 100}},
		{59 * time.Second, false, []uint32{241, 1, 41}},
		{90 * time.Second, false, []uint32{210, 0, 10}},
		{90 * time.Second, true, []uint32{StaleTTL, StaleTTL, StaleTTL}},
	} {
		got := new(dns.Msg)
		if err := got.Unpack(e.AppendTo(nil, now.Add(tt.after), tt.stale)); err != nil {
			t.Fatal(err)
		}
		ttls := []uint32{got.Answer[0].Header().Ttl, got.Answer[1].Header().Ttl, got.Ns[0].Header().Ttl}
		if fmt.Sprint(ttls) != fmt.Sprint(tt.want) {
			t.Errorf("after %v stale=%v: TTLs %v, want %v", tt.after, tt.stale, ttls, tt.want)
		}
	}
	if e.Fresh(now.Add(60*time.Second)) || !e.Fresh(now.Add(59*time.Second)) {
		t.Error("freshness does not end at the lifetime")
	}
	if capped, _ := NewEntry(answer("x", 1<<30), 3600, now); capped.TTL() != 3600 {
		t.Errorf("lifetime %d, want the cap 3600", capped.TTL())
	}
}

func TestLifetime(t *testing.T) {
	soa := func(ttl, minimum uint32) dns.RR {
		return &dns.SOA{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl}, Ns: "ns.", Mbox: "m.", Minttl: minimum}
	}
	nx := answer("nx.example")
	nx.Rcode = dns.RcodeNameError
	nx.Ns = []dns.RR{soa(300, 60)}
	nodata := answer("nodata.example")
	nodata.Ns = []dns.RR{soa(30, 600)}
	bare := answer("bare.example")
	fail := answer("fail.example")
	fail.Rcode = dns.RcodeServerFailure
	fail.Ns = []dns.RR{soa(300, 300)}
	tc := answer("tc.example", 300)
	tc.Truncated = true
	for _, tt := range []struct {
		m    *dns.Msg
		want uint32
	}{
		{answer("a.example", 50, 40), 40}, {nx, 60}, {nodata, 30}, {bare, 0}, {fail, 0}, {tc, 0},
	} {
		if got := Lifetime(tt.m); got != tt.want {
			t.Errorf("%s: lifetime %d, want %d", tt.m.Question[0].Name, got, tt.want)
		}
	}
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	now := time.Now()
	e, err := NewEntry(answer("www.example", 300), 86400, now)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([][]byte, 5000)
	for i := range keys {
		keys[i] = AppendKey(nil, []byte(fmt.Sprintf("\x05n%04d\x00", i)), 1, 1, false, false)
	}
	const fit = 5 // records per segment
	c := New(Config{MaxBytes: fit * recordSize(string(keys[0]), e) * segments * shardCount})
	bound := fit * segments * shardCount
	var got Entry
	for _, k := range keys {
		c.Put(string(k), e)
		c.Get(keys[0], now, &got) // keep 0 in use
	}
	if n := c.Len(); n > bound || n < bound/2 {
		t.Fatalf("%d entries held, bound %d", n, bound)
	}
	if !c.Get(keys[0], now, &got) {
		t.Fatal("the most used entry was evicted")
	}
	if c.Get(keys[1], now, &got) {
		t.Fatal("an old unused entry survived")
	}
	if !c.Get(keys[len(keys)-1], now, &got) {
		t.Fatal("the newest entry is missing")
	}
	if made, max := segmentBytes(c), fit*recordSize(string(keys[0]), e)*segments*shardCount; made > max {
		t.Fatalf("%d bytes of segments, MaxBytes %d", made, max)
	}
}

// TestCacheKeepsWhatItWasGiven fills a cache many times over with answers
// of different sizes, reading some all along, and checks that every entry
// it still has is byte for byte the one stored under its key: records that
// move when their segment is cleared keep their contents and index.
func TestCacheKeepsWhatItWasGiven(t *testing.T) {
	now := time.Now()
	c := New(Config{MaxBytes: 64 << 10})
	want := map[string]*Entry{}
	for i := range 20000 {
		name := fmt.Sprintf("n%d.example", i%3000) // later rounds replace earlier ones
		ttls := make([]uint32, 1+i%7)
		for j := range ttls {
			ttls[j] = uint32(100 + i + j)
		}
		e, err := NewEntry(answer(name, ttls...), 86400, now.Add(time.Duration(i)*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		e.Rcode = i % 4096
		e.Options = []byte(fmt.Sprint(i))[:i%3]
		key := AppendKey(nil, []byte(name), 1, 1, false, false)
		c.Put(string(key), e)
		want[string(key)] = e
		var got Entry
		if i%3 == 0 { // some in use, so that clearing moves them
			c.Get(AppendKey(nil, []byte(fmt.Sprintf("n%d.example", i%50)), 1, 1, false, false), now, &got)
		}
	}
	held := 0
	var got Entry
	for key, e := range want {
		if !c.Get([]byte(key), now, &got) {
			continue
		}
		held++
		if string(got.buf) != string(e.buf) || got.msgLen != e.msgLen || got.ttl != e.ttl ||
			!got.stored.Equal(e.stored) || got.Rcode != e.Rcode || string(got.Options) != string(e.Options) {
			t.Fatalf("%q: got %+v, stored %+v", key, got, *e)
		}
	}
	if held == 0 || held != c.Len() {
		t.Fatalf("%d of %d keys found, Len %d", held, len(want), c.Len())
	}
}

// TestCacheConcurrent has goroutines store, read and prefetch-count a few
// hundred names in a small cache at once: every answer read must be the
// one for the name asked (go test -race checks the locking too).
func TestCacheConcurrent(t *testing.T) {
	now := time.Now()
	c := New(Config{MaxBytes: 32 << 10})
	var wg sync.WaitGroup
	var hits atomic.Int64
	for g := range 4 {
		wg.Go(func() {
			var got Entry
			for i := range 5000 {
				name := fmt.Sprintf("n%d.example.", (i*7+g*13)%300)
				key := AppendKey(nil, []byte(name), 1, 1, false, false)
				if i%3 == g%3 {
					e, err := NewEntry(answer(name, uint32(60+i%5)), 86400, now)
					if err != nil {
						t.Error(err)
						return
					}
					c.Put(string(key), e)
					continue
				}
				if !c.Get(key, now, &got) {
					continue
				}
				hits.Add(1)
				c.ClaimPrefetch(key, &got)
				m := new(dns.Msg)
				if err := m.Unpack(got.AppendTo(nil, now, false)); err != nil || m.Question[0].Name != name {
					t.Errorf("asked for %s, got %v (%v)", name, m, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if hits.Load() == 0 {
		t.Fatal("no Get found anything: nothing was checked")
	}
}

func TestCacheReplacesAndPrefetchesOnce(t *testing.T) {
	now := time.Now()
	c := New(Config{})
	key := AppendKey(nil, []byte("\x03www\x07example\x00"), 1, 1, false, false)
	old, _ := NewEntry(answer("www.example", 300), 86400, now)
	c.Put(string(key), old)
	var got Entry
	c.Get(key, now, &got)
	if c.ClaimPrefetch(key, &got) || !c.ClaimPrefetch(key, &got) || c.ClaimPrefetch(key, &got) {
		t.Fatal("want the second hit, and only it, to claim the prefetch")
	}
	stale := got
	newer, _ := NewEntry(answer("www.example", 60), 86400, now.Add(time.Second))
	c.Put(string(key), newer)
	if !c.Get(key, now, &got) || got.TTL() != 60 || c.Len() != 1 {
		t.Fatalf("after a second Put: lifetime %d, %d entries; want the new one alone", got.TTL(), c.Len())
	}
	if c.ClaimPrefetch(key, &stale) || c.ClaimPrefetch(key, &stale) {
		t.Fatal("hits on a replaced entry claimed the new one's prefetch")
	}
	if c.ClaimPrefetch(key, &got) || !c.ClaimPrefetch(key, &got) {
		t.Fatal("the new entry counts its hits afresh")
	}
}

func TestCacheCollisionIsAMiss(t *testing.T) {
	now := time.Now()
	c := New(Config{})
	e, _ := NewEntry(answer("www.example", 300), 86400, now)
	a := AppendKey(nil, []byte("\x01a\x00"), 1, 1, false, false)
	c.Put(string(a), e)
	// Point another key's hash at a's record, as a collision would.
	for i := 0; ; i++ {
		b := AppendKey(nil, []byte(fmt.Sprintf("\x05b%04d\x00", i)), 1, 1, false, false)
		ha, hb := maphash.Bytes(c.seed, a), maphash.Bytes(c.seed, b)
		if ha%shardCount != hb%shardCount {
			continue
		}
		s := c.shard(ha)
		s.index[hb] = s.index[ha]
		var got Entry
		if c.Get(b, now, &got) {
			t.Fatal("a key whose hash leads to another key's record got its answer")
		}
		return
	}
}

// segmentBytes is the memory c's segments take.
func segmentBytes(c *Cache) int {
	n := 0
	for i := range c.shards {
		for _, seg := range c.shards[i].segs {
			n += len(seg)
		}
	}
	return n
}

func TestCacheStartsSmall(t *testing.T) {
	now := time.Now()
	c := New(Config{}) // 32 MiB
	for i := range 10 {
		e, _ := NewEntry(answer(fmt.Sprintf("n%d.example", i), 300), 86400, now)
		c.Put(string(AppendKey(nil, []byte(fmt.Sprintf("\x02n%d\x00", i)), 1, 1, false, false)), e)
	}
	if n := segmentBytes(c); c.Len() != 10 || n > 10*4096 {
		t.Fatalf("%d entries in %d bytes of segments; want 10 in a page each at most", c.Len(), n)
	}
}

func TestCacheSkipsWhatDoesNotFit(t *testing.T) {
	now := time.Now()
	e, _ := NewEntry(answer("www.example", 300, 300, 300, 300), 86400, now)
	key := AppendKey(nil, []byte("\x03www\x07example\x00"), 1, 1, false, false)
	size := recordSize(string(key), e)
	for _, tt := range []struct {
		segSize, want int
	}{{size - 1, 0}, {size, 1}} {
		c := New(Config{MaxBytes: tt.segSize * segments * shardCount})
		c.Put(string(key), e)
		if c.Len() != tt.want {
			t.Errorf("segments of %d bytes, a record of %d: %d stored, want %d", tt.segSize, size, c.Len(), tt.want)
		}
	}
}

func TestCacheStaleWindow(t *testing.T) {
	now := time.Now()
	e, _ := NewEntry(answer("www.example", 10), 86400, now)
	c := New(Config{StaleFor: time.Minute})
	key := AppendKey(nil, []byte("\x03www\x07example\x00"), 1, 1, false, false)
	c.Put(string(key), e)
	var got Entry
	if !c.Get(key, now.Add(69*time.Second), &got) || got.Fresh(now.Add(69*time.Second)) {
		t.Fatal("want the stale entry within the stale window")
	}
	if c.Get(key, now.Add(70*time.Second), &got) || c.Len() != 0 {
		t.Fatal("entry kept past its stale window")
	}
	zero, _ := NewEntry(answer("zero.example", 0), 86400, now)
	c.Put(string(key), zero)
	if c.Len() != 0 {
		t.Fatal("an answer with TTL 0 was cached")
	}
}

func TestAppendKey(t *testing.T) {
	k := func(name string, qtype uint16, do, cd bool) string {
		return string(AppendKey(nil, []byte(name), qtype, 1, do, cd))
	}
	if k("\x03WwW\x00", 1, false, false) != k("\x03www\x00", 1, false, false) {
		t.Error("keys differ by case")
	}
	distinct := []string{k("\x03www\x00", 1, false, false), k("\x03www\x00", 28, false, false),
		k("\x03www\x00", 1, true, false), k("\x03www\x00", 1, false, true), k("\x03wwx\x00", 1, false, false)}
	seen := map[string]bool{}
	for _, s := range distinct {
		if seen[s] {
			t.Errorf("key %x repeats", s)
		}
		seen[s] = true
	}
}

// FuzzEntry packs whatever message unpacks into an entry and checks that
// its copies unpack to the same records.
func FuzzEntry(f *testing.F) {
	for _, m := range []*dns.Msg{answer("www.example", 300, 60), answer("x")} {
		b, _ := m.Pack()
		f.Add(b, uint16(30))
	}
	f.Fuzz(func(t *testing.T, wire []byte, age uint16) {
		m := new(dns.Msg)
		if m.Unpack(wire) != nil || m.IsEdns0() != nil {
			return
		}
		if b, err := m.Pack(); err != nil || new(dns.Msg).Unpack(b) != nil {
			return // miekg/dns does not round-trip every record (TKEY)
		}
		now := time.Now()
		e, err := NewEntry(m, 86400, now)
		if err != nil {
			return
		}
		out := new(dns.Msg)
		if err := out.Unpack(e.AppendTo(nil, now.Add(time.Duration(age)*time.Second), false)); err != nil {
			t.Fatalf("entry does not unpack: %v", err)
		}
		if len(out.Answer) != len(m.Answer) || len(out.Ns) != len(m.Ns) || len(out.Extra) != len(m.Extra) {
			t.Fatalf("sections changed: %v\n%v", m, out)
		}
		for i, rr := range out.Answer {
			want := m.Answer[i].Header().Ttl
			want -= min(want, uint32(age))
			if rr.Header().Ttl != want {
				t.Fatalf("answer %d TTL %d, want %d", i, rr.Header().Ttl, want)
			}
		}
	})
}

// FuzzParseEntry checks the wire-form fast path against the long way:
// for any answer both take, the entries unpack to the same message.
func FuzzParseEntry(f *testing.F) {
	soa := &dns.SOA{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 300}, Ns: "ns.example.", Mbox: "m.example.", Minttl: 60}
	nx := answer("nx.example")
	nx.Rcode = dns.RcodeNameError
	nx.Ns = []dns.RR{soa}
	withOPT := answer("www.example", 300, 60)
	withOPT.SetEdns0(1232, true)
	withOPT.IsEdns0().Option = append(withOPT.IsEdns0().Option, &dns.EDNS0_EDE{InfoCode: 3, ExtraText: "x"}, &dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: "ab"})
	for _, m := range []*dns.Msg{answer("www.example", 300, 60), nx, withOPT} {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, wire []byte) {
		now := time.Now()
		fast, err := ParseEntry(wire, 86400, now)
		if err != nil {
			return
		}
		got := new(dns.Msg)
		if err := got.Unpack(fast.AppendTo(nil, now, false)); err != nil {
			return // a name the fast path does not follow (pointers) may be bad
		}
		m := new(dns.Msg)
		if m.Unpack(wire) != nil {
			return
		}
		opt := m.IsEdns0()
		var extra []dns.RR
		for _, rr := range m.Extra {
			if rr.Header().Rrtype != dns.TypeOPT {
				extra = append(extra, rr)
			}
		}
		m.Extra = extra
		if want := min(Lifetime(m), 86400); fast.TTL() != want {
			t.Fatalf("lifetime %d by wire, %d by message:\n%v", fast.TTL(), want, m)
		}
		if opt != nil {
			m.Rcode &= 0xF // the extended bits live in the OPT record
		}
		if len(got.Answer) != len(m.Answer) || len(got.Ns) != len(m.Ns) || len(got.Extra) != len(m.Extra) || got.Rcode != m.Rcode {
			t.Fatalf("fast path changed the message:\n%v\n%v", m, got)
		}
	})
}

func TestParseEntry(t *testing.T) {
	m := answer("www.example", 300, 60)
	m.Id = 99
	m.Truncated = false
	m.SetEdns0(1232, true)
	opt := m.IsEdns0()
	m.Rcode = dns.RcodeBadCookie // 23: 7 in the header, 1 in the OPT record
	opt.Option = append(opt.Option, &dns.EDNS0_EDE{InfoCode: 18, ExtraText: "prohibited"}, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: []byte{1, 2, 3, 0}})
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	e, err := ParseEntry(wire, 86400, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got := new(dns.Msg)
	if err := got.Unpack(e.AppendTo(nil, time.Now(), false)); err != nil {
		t.Fatal(err)
	}
	if got.Id != 0 || got.IsEdns0() != nil || len(got.Answer) != 2 || !got.RecursionAvailable {
		t.Fatalf("entry: %v", got)
	}
	if e.Rcode != dns.RcodeBadCookie || e.TTL() != 0 {
		t.Fatalf("rcode %d lifetime %d, want 23 and 0 (not cached)", e.Rcode, e.TTL())
	}
	plain, _ := answer("www.example", 300, 60).Pack()
	if e, err := ParseEntry(plain, 86400, time.Now()); err != nil || e.TTL() != 60 {
		t.Fatalf("plain answer: %v, lifetime %d, want 60", err, e.TTL())
	}
	want := []byte{0, 15, 0, 12, 0, 18}
	if string(e.Options) != string(append(want, "prohibited"...)) {
		t.Fatalf("options %x: want only the extended error", e.Options)
	}
}
