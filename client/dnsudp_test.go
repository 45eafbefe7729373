package client

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/porta443/porta/doh"
	"github.com/porta443/porta/internal/testenv"
)

// countingExchanger counts the queries that took the slow path to the
// resolver; while gate is open (not nil and not closed) they wait for it.
type countingExchanger struct {
	doh.Exchanger
	n    atomic.Int64
	gate chan struct{}
}

func (c *countingExchanger) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	c.n.Add(1)
	if c.gate != nil {
		select {
		case <-c.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return c.Exchanger.Exchange(ctx, m)
}

// startDNSUDP serves a dnsUDP on 127.0.0.1 with a resolver whose upstream
// is on loopback; it returns the server's address and the slow path's
// counter.
func startDNSUDP(t testing.TB) (string, *countingExchanger) {
	t.Helper()
	addr, slow, _ := startDNSUDPWith(t, maxSlowQueries, nil)
	return addr, slow
}

// startDNSUDPWith is startDNSUDP with room for slots slow queries, which
// wait for gate when it is not nil. It returns the resolver too.
func startDNSUDPWith(t testing.TB, slots int, gate chan struct{}) (string, *countingExchanger, *doh.Resolver) {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s, slow, resolver := newTestDNSUDP(t, conn, slots, gate)
	serveDNSUDP(t, s, s.readLoop)
	return conn.LocalAddr().String(), slow, resolver
}

// newTestDNSUDP is a dnsUDP on conn, not yet serving, with a resolver whose
// upstream is on loopback and room for slots slow queries, which wait for
// gate when it is not nil.
func newTestDNSUDP(t testing.TB, conn *net.UDPConn, slots int, gate chan struct{}) (*dnsUDP, *countingExchanger, *doh.Resolver) {
	t.Helper()
	big := make([]string, 60)
	for i := range big {
		big[i] = fmt.Sprintf("192.0.2.%d", i+1)
	}
	up := testenv.NewUpstream(t, map[string][]string{
		"www.example.test":  {"192.0.2.80"},
		"big.example.test":  big,
		"porta-server.test": {"127.0.0.1"},
	})
	resolver, err := doh.NewResolver(doh.ResolverConfig{Upstreams: []string{up.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	boot, err := newBootstrap([]string{"https://porta-server.test"}, []string{up.Addr})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := ParseRecords([]string{"porta.test=10.1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resolver.Close() })
	slow := &countingExchanger{Exchanger: resolver, gate: gate}
	h := &dnsHandler{local: new(atomic.Uint64), records: recs, bootstrap: boot, upstream: slow, log: slog.New(slog.DiscardHandler)}
	s := newDNSUDP(conn, resolver, h, h.log)
	s.slow = make(chan struct{}, slots)
	return s, slow, resolver
}

// serveDNSUDP serves s with the read loop given until the test ends, and
// checks that it stops cleanly then.
func serveDNSUDP(t testing.TB, s *dnsUDP, loop func() error) {
	served := make(chan error, 1)
	go func() { served <- s.serveWith(loop) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.shutdown(ctx)
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
}

// askUDP sends m to addr and returns the answer.
func askUDP(t *testing.T, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	q, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return askUDPRaw(t, addr, q)
}

func askUDPRaw(t *testing.T, addr string, q []byte) *dns.Msg {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(q); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf[:n]); err != nil {
		t.Fatalf("answer of %d bytes: %v", n, err)
	}
	return r
}

func TestDNSUDPAnswersHitsInTheLoop(t *testing.T) {
	addr, slow := startDNSUDP(t)
	m := new(dns.Msg)
	m.SetQuestion("www.example.test.", dns.TypeA)
	m.Id = 1111
	first := askUDP(t, addr, m)
	if first.Id != 1111 || len(first.Answer) != 1 || slow.n.Load() != 1 {
		t.Fatalf("first answer (%d slow): %v", slow.n.Load(), first)
	}
	time.Sleep(1100 * time.Millisecond) // so that the TTL counts down
	m.SetQuestion("WwW.eXaMpLe.TeSt.", dns.TypeA)
	m.Id = 2222
	second := askUDP(t, addr, m)
	if slow.n.Load() != 1 {
		t.Fatal("a cache hit took the slow path")
	}
	if second.Id != 2222 || second.Question[0].Name != "WwW.eXaMpLe.TeSt." || len(second.Answer) != 1 {
		t.Fatalf("hit: %v", second)
	}
	if ttl, ttl1 := second.Answer[0].Header().Ttl, first.Answer[0].Header().Ttl; ttl >= ttl1 {
		t.Fatalf("TTL %d after %d, want it counted down", ttl, ttl1)
	}
	// Local records and bootstrap names never reach the resolver.
	for _, name := range []string{"porta.test.", "porta-server.test."} {
		for range 2 {
			m.SetQuestion(name, dns.TypeA)
			if r := askUDP(t, addr, m); len(r.Answer) != 1 {
				t.Fatalf("%s: %v", name, r)
			}
		}
	}
	if slow.n.Load() != 1 {
		t.Fatalf("local names reached the resolver %d times", slow.n.Load()-1)
	}
}

// TestDNSUDPTruncatesHits: a hit too big for the asker takes the slow path
// and comes back truncated.
func TestDNSUDPTruncatesHits(t *testing.T) {
	addr, slow := startDNSUDP(t)
	m := new(dns.Msg)
	m.SetQuestion("big.example.test.", dns.TypeA)
	m.SetEdns0(4096, false)
	if r := askUDP(t, addr, m); r.Truncated || len(r.Answer) != 60 {
		t.Fatalf("EDNS 4096: TC %v, %d answers", r.Truncated, len(r.Answer))
	}
	if r := askUDP(t, addr, m); r.Truncated || len(r.Answer) != 60 || slow.n.Load() != 1 {
		t.Fatalf("EDNS 4096 hit: TC %v, %d answers, %d slow", r.Truncated, len(r.Answer), slow.n.Load())
	}
	m.Extra = nil
	if r := askUDP(t, addr, m); !r.Truncated || slow.n.Load() != 2 {
		t.Fatalf("512 bytes: TC %v, %d slow", r.Truncated, slow.n.Load())
	}
}

// TestDNSUDPDropsPastTheSlowLimit: with every slow slot taken, more slow
// queries are dropped, and hits are still answered in the loop.
func TestDNSUDPDropsPastTheSlowLimit(t *testing.T) {
	gate := make(chan struct{})
	addr, slow, resolver := startDNSUDPWith(t, 2, gate)
	m := new(dns.Msg)
	m.SetQuestion("www.example.test.", dns.TypeA)
	if _, err := resolver.Exchange(t.Context(), m); err != nil { // a hit from now on
		t.Fatal(err)
	}
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range 3 {
		q := new(dns.Msg)
		q.SetQuestion(fmt.Sprintf("miss%d.example.test.", i), dns.TypeA)
		b, _ := q.Pack()
		conn.Write(b)
		for deadline := time.Now().Add(5 * time.Second); i < 2 && slow.n.Load() != int64(i+1); { // in order: the third finds no slot
			if time.Now().After(deadline) {
				t.Fatalf("slow query %d never reached the resolver", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if r := askUDP(t, addr, m); len(r.Answer) != 1 {
		t.Fatalf("hit while the slow path is full: %v", r)
	}
	close(gate)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	for range 2 {
		if _, err := conn.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := conn.Read(buf); err == nil {
		t.Fatal("a third answer: the query past the limit was not dropped")
	}
	if n := slow.n.Load(); n != 2 {
		t.Fatalf("%d slow queries, want 2", n)
	}
}

func TestDNSUDPSurvivesGarbage(t *testing.T) {
	addr, _ := startDNSUDP(t)
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp := new(dns.Msg)
	resp.SetQuestion("www.example.test.", dns.TypeA)
	resp.Response = true
	answer, _ := resp.Pack()
	for _, p := range [][]byte{
		{}, {1}, make([]byte, 11), answer,
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 0x0C}, // a question name pointing at itself
	} {
		if _, err := conn.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	// A header with no question is FORMERR; the loop still serves.
	if r := askUDPRaw(t, addr, []byte{0, 7, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}); r.Rcode != dns.RcodeFormatError || r.Id != 7 {
		t.Fatalf("no question: %v", r)
	}
	m := new(dns.Msg)
	m.SetQuestion("www.example.test.", dns.TypeA)
	for range 2 {
		if r := askUDP(t, addr, m); len(r.Answer) != 1 {
			t.Fatalf("after garbage: %v", r)
		}
	}
}

// TestDNSUDPAnswersEachAsker: queries from several askers, waiting on the
// socket together (one batch on Linux), each get their own answer at their
// own address, hits and slow ones alike, over IPv4 and IPv6, with either
// read loop.
func TestDNSUDPAnswersEachAsker(t *testing.T) {
	loops := map[string]func(*dnsUDP) func() error{
		"readLoop": func(s *dnsUDP) func() error { return s.readLoop },
		"readOne":  func(s *dnsUDP) func() error { return s.readOne },
	}
	for _, network := range []string{"udp4", "udp6"} {
		for name, loop := range loops {
			t.Run(network+"/"+name, func(t *testing.T) {
				testAnswersEachAsker(t, network, loop)
			})
		}
	}
}

func testAnswersEachAsker(t *testing.T, network string, loop func(*dnsUDP) func() error) {
	ip := net.IPv4(127, 0, 0, 1)
	if network == "udp6" {
		ip = net.IPv6loopback
	}
	conn, err := net.ListenUDP(network, &net.UDPAddr{IP: ip})
	if err != nil {
		if os.Getenv("CI") != "" { // nothing is skipped in CI
			t.Fatalf("no %s loopback: %v", network, err)
		}
		t.Skipf("no %s loopback: %v", network, err)
	}
	s, slow, resolver := newTestDNSUDP(t, conn, maxSlowQueries, nil)
	for _, name := range []string{"www.example.test.", "big.example.test."} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		if _, err := resolver.Exchange(t.Context(), m); err != nil { // a hit from now on
			t.Fatal(err)
		}
	}
	slow.n.Store(0)
	// What each asker asks; all but the local record are in the cache.
	queries := []struct {
		name      string
		edns      uint16 // 0: none
		truncated bool
	}{
		{"www.example.test.", 1232, false},
		{"www.example.test.", 0, false},
		{"big.example.test.", 4096, false},
		{"big.example.test.", 0, true}, // too big for 512 bytes: the slow path truncates it
		{"porta.test.", 0, false},      // a local record: the slow path, never the resolver
	}
	const askers = 6
	clients := make([]*net.UDPConn, askers)
	for i := range clients {
		if clients[i], err = net.DialUDP(network, nil, conn.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
		defer clients[i].Close()
	}
	// Every query waits on the socket before the loop starts reading.
	for i, c := range clients {
		for j, q := range queries {
			m := new(dns.Msg)
			m.SetQuestion(q.name, dns.TypeA)
			m.Id = uint16(i<<8 | j)
			if q.edns != 0 {
				m.SetEdns0(q.edns, false)
			}
			b, _ := m.Pack()
			if _, err := c.Write(b); err != nil {
				t.Fatal(err)
			}
		}
	}
	serveDNSUDP(t, s, loop(s))
	buf := make([]byte, 65535)
	for i, c := range clients {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got := map[uint16]bool{}
		for range queries {
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("asker %d: %d answers of %d: %v", i, len(got), len(queries), err)
			}
			r := new(dns.Msg)
			if err := r.Unpack(buf[:n]); err != nil {
				t.Fatalf("asker %d: %v", i, err)
			}
			if int(r.Id>>8) != i || int(r.Id&0xff) >= len(queries) || got[r.Id] {
				t.Fatalf("asker %d got the answer with ID %#x", i, r.Id)
			}
			got[r.Id] = true
			q := queries[r.Id&0xff]
			if r.Question[0].Name != q.name || r.Truncated != q.truncated || !r.Truncated && len(r.Answer) == 0 {
				t.Fatalf("asker %d, %s with EDNS %d: %v", i, q.name, q.edns, r)
			}
		}
	}
	if n := slow.n.Load(); n != askers { // the truncated ones
		t.Fatalf("%d queries reached the resolver through the slow path, want %d", n, askers)
	}
}

// startHitBench starts the resolver for a benchmark and returns a query
// for a cached name and the address to ask.
func startHitBench(b *testing.B) ([]byte, *net.UDPAddr) {
	addr, _ := startDNSUDP(b)
	m := new(dns.Msg)
	m.SetQuestion("www.example.test.", dns.TypeA)
	m.SetEdns0(1232, false)
	q, _ := m.Pack()
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		b.Fatal(err)
	}
	return q, raddr
}

// BenchmarkDNSUDPHit is one cache hit through the read loop, the asker's
// side included: no allocation in steady state.
func BenchmarkDNSUDPHit(b *testing.B) {
	q, raddr := startHitBench(b)
	conn, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 2048)
	ask := func() {
		conn.Write(q)
		if _, err := conn.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
	conn.SetDeadline(time.Now().Add(time.Minute))
	ask() // fills the cache
	b.ReportAllocs()
	for b.Loop() {
		ask()
	}
}

// BenchmarkDNSUDPHitBurst is cache hits with many queries in flight from
// several askers, as dnsperf asks: ns/op is per query, both sides
// included.
func BenchmarkDNSUDPHitBurst(b *testing.B) {
	q, raddr := startHitBench(b)
	const inFlight = 16
	warm, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		b.Fatal(err)
	}
	defer warm.Close()
	warm.SetDeadline(time.Now().Add(time.Minute))
	warm.Write(q)
	if _, err := warm.Read(make([]byte, 2048)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		conn, err := net.DialUDP("udp", nil, raddr)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(time.Minute))
		buf := make([]byte, 2048)
		for range inFlight {
			conn.Write(q)
		}
		for pb.Next() {
			if _, err := conn.Read(buf); err != nil {
				b.Error(err)
				return
			}
			conn.Write(q)
		}
		for range inFlight {
			if _, err := conn.Read(buf); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
