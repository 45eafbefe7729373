package doh

import (
	"bytes"
	"context"
	"encoding/binary"
	"reflect"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// cachedQueries are the shapes of query AppendCached must answer exactly as
// Exchange does: ID, RD/CD/AD, 0x20 case, EDNS with DO and padding.
func cachedQueries() map[string]*dns.Msg {
	qs := map[string]*dns.Msg{}
	add := func(name string, f func(m *dns.Msg)) {
		m := newQuery("WwW.eXample", dns.TypeA)
		m.Id = 0xBEEF
		f(m)
		qs[name] = m
	}
	add("plain", func(m *dns.Msg) {})
	add("no RD", func(m *dns.Msg) { m.RecursionDesired = false })
	add("CD", func(m *dns.Msg) { m.CheckingDisabled = true })
	add("AD", func(m *dns.Msg) { m.AuthenticatedData = true })
	add("EDNS", func(m *dns.Msg) { m.SetEdns0(4096, false) })
	add("EDNS DO", func(m *dns.Msg) { m.SetEdns0(1232, true) })
	add("padded", func(m *dns.Msg) {
		m.SetEdns0(1232, false)
		opt := m.IsEdns0()
		opt.Option = append(opt.Option, &dns.EDNS0_PADDING{Padding: make([]byte, 8)})
	})
	return qs
}

func TestAppendCachedEqualsExchange(t *testing.T) {
	up := newTestUpstream(t)
	r, clock := newCachingResolver(t, up, ResolverConfig{NoPrefetch: true})
	for name, m := range cachedQueries() {
		t.Run(name, func(t *testing.T) {
			msg := packQuery(t, m)
			exchange(t, r, m.Copy()) // fills the cache for this key
			before := up.queries.Load()
			clock.Advance(7 * time.Second)
			prefix := []byte("prefix")
			out, ok := r.AppendCached(prefix, msg, MaxMessageSize)
			if !ok {
				t.Fatal("no hit after an exchange")
			}
			if !bytes.Equal(out[:len(prefix)], []byte("prefix")) {
				t.Fatalf("dst's bytes changed: %q", out[:len(prefix)])
			}
			got := new(dns.Msg)
			if err := got.Unpack(out[len(prefix):]); err != nil {
				t.Fatal(err)
			}
			want := exchange(t, r, m.Copy())
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("AppendCached:\n%v\nExchange:\n%v", got, want)
			}
			if got.Id != 0xBEEF || got.Question[0].Name != "WwW.eXample." {
				t.Fatalf("ID or case not the query's: %v", got)
			}
			if up.queries.Load() != before {
				t.Fatal("a hit went upstream")
			}
		})
	}
}

func TestAppendCachedHitCountsDown(t *testing.T) {
	up := newTestUpstream(t)
	r, clock := newCachingResolver(t, up, ResolverConfig{NoPrefetch: true})
	exchange(t, r, newQuery("two.example", dns.TypeA))
	clock.Advance(45*time.Second + 500*time.Millisecond)
	out, ok := r.AppendCached(nil, packQuery(t, newQuery("two.example", dns.TypeA)), dns.MinMsgSize)
	resp := new(dns.Msg)
	if !ok || resp.Unpack(out) != nil {
		t.Fatalf("hit %v, % x", ok, out)
	}
	if got := []uint32{resp.Answer[0].Header().Ttl, resp.Answer[1].Header().Ttl}; got[0] != 255 || got[1] != 15 {
		t.Fatalf("TTLs after 45.5 s: %v, want [255 15]", got)
	}
}

// TestAppendCachedDeclines: everything but a fresh hit that fits returns
// dst as it was, and nothing goes upstream.
func TestAppendCachedDeclines(t *testing.T) {
	up := newTestUpstream(t)
	up.setTTL(10)
	r, clock := newCachingResolver(t, up, ResolverConfig{NoPrefetch: true})
	exchange(t, r, newQuery("www.example", dns.TypeA))
	hit := packQuery(t, newQuery("www.example", dns.TypeA))
	out, ok := r.AppendCached(nil, hit, MaxMessageSize)
	if !ok {
		t.Fatal("no hit")
	}
	size := len(out)
	mod := func(f func(m *dns.Msg)) []byte { return packModified(t, f) }
	tests := []struct {
		name   string
		msg    []byte
		maxLen int
	}{
		{"miss", packQuery(t, newQuery("two.example", dns.TypeA)), MaxMessageSize},
		{"other type", packQuery(t, newQuery("www.example", dns.TypeAAAA)), MaxMessageSize},
		{"too big", hit, size - 1},
		{"empty", nil, MaxMessageSize},
		{"short", hit[:11], MaxMessageSize},
		{"cut", hit[:len(hit)-1], MaxMessageSize},
		{"trailing", append(bytes.Clone(hit), 0), MaxMessageSize},
		{"garbage", bytes.Repeat([]byte{0xC0}, 40), MaxMessageSize},
		{"response", mod(func(m *dns.Msg) { m.Response = true }), MaxMessageSize},
		{"notify", mod(func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }), MaxMessageSize},
		{"no question", mod(func(m *dns.Msg) { m.Question = nil }), MaxMessageSize},
		{"two questions", mod(func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }), MaxMessageSize},
		{"EDNS version 1", mod(func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) }), MaxMessageSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("dst")
			out, ok := r.AppendCached(dst, tt.msg, tt.maxLen)
			if ok || string(out) != "dst" {
				t.Fatalf("got %v, %q; want false, dst", ok, out)
			}
		})
	}
	if _, ok := r.AppendCached(nil, hit, size); !ok {
		t.Fatal("an answer of exactly maxLen bytes was declined")
	}
	clock.Advance(11 * time.Second) // expired, still kept to be served stale
	if out, ok := r.AppendCached(nil, hit, MaxMessageSize); ok || out != nil {
		t.Fatalf("a stale answer was served: %v", ok)
	}
	if n := up.queries.Load(); n != 1 {
		t.Fatalf("upstream asked %d times, want 1", n)
	}
	off := newTestResolver(t, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}, CacheBytes: -1})
	exchange(t, off, newQuery("www.example", dns.TypeA))
	if _, ok := off.AppendCached(nil, hit, MaxMessageSize); ok {
		t.Fatal("a hit with caching off")
	}
}

// AppendCachedUDP reports the asker's UDP size for hits and misses alike.
// www.example's A record is cached (without DO), so the well-formed
// queries for it hit (an OPT record outside the additional section is
// no EDNS, just a record); the DO one and the malformed ones miss.
func TestAppendCachedUDPSize(t *testing.T) {
	up := newTestUpstream(t)
	r := newTestResolver(t, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}})
	exchange(t, r, newQuery("www.example", dns.TypeA))
	q := func(f func(m *dns.Msg)) []byte { return packModified(t, f) }
	tests := []struct {
		name string
		msg  []byte
		want int
		hit  bool
	}{
		{"no EDNS", q(func(m *dns.Msg) {}), 512, true},
		{"EDNS 1232", q(func(m *dns.Msg) { m.SetEdns0(1232, false) }), 1232, true},
		{"EDNS 4096 DO", q(func(m *dns.Msg) { m.SetEdns0(4096, true) }), 4096, false},
		{"EDNS 100", q(func(m *dns.Msg) { m.SetEdns0(100, false) }), 512, true},
		{"OPT after another record", q(func(m *dns.Msg) {
			m.Extra = append(m.Extra, &dns.A{Hdr: dns.RR_Header{Name: "x.", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: []byte{1, 2, 3, 4}})
			m.SetEdns0(2048, false)
		}), 2048, true},
		{"OPT-like record in answers", q(func(m *dns.Msg) {
			m.Answer = append(m.Answer, &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: 4000}})
		}), 512, true},
		{"empty", nil, 512, false},
		{"cut", q(func(m *dns.Msg) { m.SetEdns0(1232, false) })[:20], 512, false},
	}
	for _, tt := range tests {
		if _, got, hit := r.AppendCachedUDP(nil, tt.msg); got != tt.want || hit != tt.hit {
			t.Errorf("%s: size %d, hit %v; want %d, %v", tt.name, got, hit, tt.want, tt.hit)
		}
	}
}

func BenchmarkAppendCached(b *testing.B) {
	up := newTestUpstream(b)
	r := newTestResolver(b, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}})
	m := newQuery("www.example", dns.TypeA)
	m.SetEdns0(1232, false)
	ctx := context.Background()
	if _, err := r.Exchange(ctx, m); err != nil {
		b.Fatal(err)
	}
	msg := packQuery(b, m)
	var out []byte
	b.ReportAllocs()
	for b.Loop() {
		var ok bool
		if out, ok = r.AppendCached(out[:0], msg, 1232); !ok {
			b.Fatal("no hit")
		}
	}
}

func FuzzAppendCached(f *testing.F) {
	for _, q := range seedQueries(f) {
		f.Add(q)
	}
	up := newTestUpstream(f)
	r := newTestResolver(f, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}})
	for _, q := range seedQueries(f) {
		m := new(dns.Msg)
		if m.Unpack(q) == nil && len(m.Question) == 1 {
			if _, err := r.Exchange(context.Background(), m); err != nil {
				f.Fatal(err)
			}
		}
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		if out, size, ok := r.AppendCachedUDP([]byte("dst"), msg); size < dns.MinMsgSize || size > MaxMessageSize || string(out[:3]) != "dst" || ok && len(out)-3 > size {
			t.Fatalf("AppendCachedUDP: size %d, %d bytes out, %v", size, len(out), ok)
		}
		out, ok := r.AppendCached([]byte("dst"), msg, MaxMessageSize)
		if string(out[:3]) != "dst" || !ok && len(out) != 3 {
			t.Fatalf("dst not kept: %v %q", ok, out)
		}
		if !ok {
			return
		}
		m := new(dns.Msg)
		if err := m.Unpack(out[3:]); err != nil || !m.Response || m.Id != binary.BigEndian.Uint16(msg) {
			t.Fatalf("hit for %x: %v\n%v", msg, err, m)
		}
	})
}

// packModified packs a query for www.example A after f has changed it.
func packModified(t *testing.T, f func(m *dns.Msg)) []byte {
	t.Helper()
	m := newQuery("www.example", dns.TypeA)
	f(m)
	return packQuery(t, m)
}
