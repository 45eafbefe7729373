package doh

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/porta443/porta/internal/sameport"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testUpstream is a DNS server on 127.0.0.1, UDP and TCP on one port,
// whose answers depend on the first label of the name asked:
//
//	nx       NXDOMAIN with an SOA (TTL 300, MINIMUM 60)
//	nodata   NOERROR, no answer, SOA (TTL 30, MINIMUM 600)
//	trunc    over UDP an empty truncated answer; over TCP the full one
//	fail     SERVFAIL
//	refused  REFUSED
//	drop     no answer at all
//	slow     the answer after 300 ms
//	gated    the answer once the test closes gate (or after 10 s)
//	lossy    the first query for each name is dropped, later ones answered
//	anything else: A 192.0.2.1 with TTL 300 (and a second A with TTL 60
//	for names starting "two")
//
// Mode overrides that for every name: "" (as above), "fail", "drop".
type testUpstream struct {
	Addr string // host:port, UDP and TCP

	mu      sync.Mutex
	mode    string
	ttl     uint32
	queries atomic.Int64
	udp     atomic.Int64
	tcp     atomic.Int64
	last    *dns.Msg // the last query received
	seen    map[string]bool
	gate    chan struct{}
}

func newTestUpstream(t testing.TB) *testUpstream {
	t.Helper()
	u := &testUpstream{ttl: 300, gate: make(chan struct{})}
	ln, pc, err := sameport.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.Addr = ln.Addr().String()
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: u}, {Listener: ln, Handler: u}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.ActivateAndServe()
		}()
		<-started
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.ShutdownContext(ctx)
			<-done
		})
	}
	return u
}

func (u *testUpstream) setMode(mode string) {
	u.mu.Lock()
	u.mode = mode
	u.mu.Unlock()
}

func (u *testUpstream) setTTL(ttl uint32) {
	u.mu.Lock()
	u.ttl = ttl
	u.mu.Unlock()
}

func (u *testUpstream) lastQuery() *dns.Msg {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

func (u *testUpstream) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	u.queries.Add(1)
	overTCP := w.LocalAddr().Network() == "tcp"
	if overTCP {
		u.tcp.Add(1)
	} else {
		u.udp.Add(1)
	}
	u.mu.Lock()
	mode, ttl := u.mode, u.ttl
	u.last = r.Copy()
	u.mu.Unlock()
	q := r.Question[0]
	label := strings.ToLower(strings.SplitN(q.Name, ".", 2)[0])
	if mode != "" {
		label = mode
	}
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(1232, opt.Do())
	}
	soa := func(ttl, minimum uint32) dns.RR {
		return &dns.SOA{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
			Ns: "ns.example.", Mbox: "admin.example.", Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: minimum}
	}
	a := func(ip string, ttl uint32) dns.RR {
		return &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: net.ParseIP(ip)}
	}
	switch label {
	case "nx":
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{soa(300, 60)}
	case "nodata":
		m.Ns = []dns.RR{soa(30, 600)}
	case "fail":
		m.Rcode = dns.RcodeServerFailure
	case "refused":
		m.Rcode = dns.RcodeRefused
	case "drop":
		return
	case "lossy":
		u.mu.Lock()
		first := !u.seen[q.Name]
		if u.seen == nil {
			u.seen = make(map[string]bool)
		}
		u.seen[q.Name] = true
		u.mu.Unlock()
		if first {
			return
		}
		m.Answer = []dns.RR{a("192.0.2.1", ttl)}
	case "gated":
		select {
		case <-u.gate:
		case <-time.After(10 * time.Second):
		}
		m.Answer = []dns.RR{a("192.0.2.1", ttl)}
	case "slow":
		time.Sleep(300 * time.Millisecond)
		m.Answer = []dns.RR{a("192.0.2.1", ttl)}
	case "huge": // longer than asked for, untruncated, over UDP too
		for i := range 300 {
			m.Answer = append(m.Answer, a(net.IPv4(192, 0, 2+byte(i/256), byte(i)).String(), ttl))
		}
	case "trunc":
		if !overTCP {
			m.Truncated = true
			break
		}
		for i := range 100 {
			m.Answer = append(m.Answer, a(net.IPv4(192, 0, 2, byte(i)).String(), ttl))
		}
	default:
		switch q.Qtype {
		case dns.TypeA:
			m.Answer = []dns.RR{a("192.0.2.1", ttl)}
			if strings.HasPrefix(label, "two") {
				m.Answer = append(m.Answer, a("192.0.2.2", 60))
			}
		case dns.TypeAAAA:
			m.Answer = []dns.RR{&dns.AAAA{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: ttl}, AAAA: net.ParseIP("2001:db8::1")}}
		default:
			m.Ns = []dns.RR{soa(300, 300)}
		}
	}
	w.WriteMsg(m)
}

// newTestResolver makes a Resolver forwarding to urls, closed at cleanup.
func newTestResolver(t testing.TB, cfg ResolverConfig) *Resolver {
	t.Helper()
	r, err := NewResolver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// fakeClock is a settable clock for TTL tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newQuery(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	return m
}

func exchange(t *testing.T, ex Exchanger, m *dns.Msg) *dns.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := ex.Exchange(ctx, m)
	if err != nil {
		t.Fatalf("exchange %s: %v", m.Question[0].Name, err)
	}
	if r.Id != m.Id {
		t.Fatalf("answer ID %d, query ID %d", r.Id, m.Id)
	}
	return r
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
