package doh

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestResolverAnswers(t *testing.T) {
	up := newTestUpstream(t)
	r := newTestResolver(t, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}})
	tests := []struct {
		name   string
		qtype  uint16
		rcode  int
		answer int
		ns     int
	}{
		{"www.example", dns.TypeA, dns.RcodeSuccess, 1, 0},
		{"two.example", dns.TypeA, dns.RcodeSuccess, 2, 0},
		{"www.example", dns.TypeAAAA, dns.RcodeSuccess, 1, 0},
		{"nx.example", dns.TypeA, dns.RcodeNameError, 0, 1},
		{"nodata.example", dns.TypeA, dns.RcodeSuccess, 0, 1},
		{"refused.example", dns.TypeA, dns.RcodeRefused, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+dns.TypeToString[tt.qtype], func(t *testing.T) {
			resp := exchange(t, r, newQuery(tt.name, tt.qtype))
			if resp.Rcode != tt.rcode || len(resp.Answer) != tt.answer || len(resp.Ns) != tt.ns {
				t.Fatalf("got rcode %s, %d answers, %d authority; want %s, %d, %d:\n%v",
					dns.RcodeToString[resp.Rcode], len(resp.Answer), len(resp.Ns),
					dns.RcodeToString[tt.rcode], tt.answer, tt.ns, resp)
			}
			if !resp.Response || !resp.RecursionAvailable || !resp.RecursionDesired || resp.Truncated {
				t.Fatalf("flags: %v", resp.MsgHdr)
			}
		})
	}
}

func TestResolverCoalesces(t *testing.T) {
	up := newTestUpstream(t)
	r := newTestResolver(t, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}, Timeout: 20 * time.Second, AttemptTimeout: 20 * time.Second})
	var wg sync.WaitGroup
	answers := make([]*dns.Msg, 100)
	errs := make([]error, 100)
	for i := range answers {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			answers[i], errs[i] = r.Exchange(ctx, newQuery("gated.example", dns.TypeA))
		})
	}
	// The upstream holds its answer until all 100 wait on one flight.
	waitFor(t, "100 queries on one flight", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, f := range r.flights {
			return len(r.flights) == 1 && f.waiters.Load() == 100
		}
		return false
	})
	close(up.gate)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		if len(answers[i].Answer) != 1 {
			t.Fatalf("answer %d: %v", i, answers[i])
		}
	}
	if n := up.queries.Load(); n != 1 {
		t.Fatalf("100 identical queries made %d upstream queries, want 1", n)
	}
}

// An answer over UDP that comes back truncated, or longer than a Linux
// reader's slot (an upstream that ignores the EDNS size asked for), is
// asked again over TCP and arrives whole; elsewhere the reader takes the
// long one whole.
func TestResolverLongAnswers(t *testing.T) {
	longOverTCP := int64(0)
	if runtime.GOOS == "linux" {
		longOverTCP = 1
	}
	for _, tc := range []struct {
		name    string
		answers int
		wantTCP int64
	}{
		{"trunc.example", 100, 1},
		{"huge.example", 300, longOverTCP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newTestUpstream(t)
			r := newTestResolver(t, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}})
			resp := exchange(t, r, newQuery(tc.name, dns.TypeA))
			if resp.Truncated || len(resp.Answer) != tc.answers {
				t.Fatalf("truncated %v, %d answers; want the full %d", resp.Truncated, len(resp.Answer), tc.answers)
			}
			if up.udp.Load() != 1 || up.tcp.Load() != tc.wantTCP {
				t.Fatalf("upstream saw %d UDP and %d TCP queries, want 1 and %d", up.udp.Load(), up.tcp.Load(), tc.wantTCP)
			}
		})
	}
}

func TestResolverSchemes(t *testing.T) {
	up := newTestUpstream(t)
	for _, scheme := range []string{"udp://", "tcp://", ""} {
		t.Run(scheme, func(t *testing.T) {
			r := newTestResolver(t, ResolverConfig{Upstreams: []string{scheme + up.Addr}})
			for range 3 { // the second and third reuse a TCP connection
				m := newQuery("www.example", dns.TypeA)
				r2 := exchange(t, r, m)
				if len(r2.Answer) != 1 {
					t.Fatalf("answer: %v", r2)
				}
				r.cache = nil // ask the upstream each time
			}
		})
	}
}

func TestResolverFailsOverOnTimeout(t *testing.T) {
	dead := newTestUpstream(t)
	dead.setMode("drop")
	live := newTestUpstream(t)
	r := newTestResolver(t, ResolverConfig{
		Upstreams:      []string{"udp://" + dead.Addr, "udp://" + live.Addr},
		AttemptTimeout: 500 * time.Millisecond,
		Timeout:        10 * time.Second,
	})
	for _, name := range []string{"a.example", "b.example", "c.example"} {
		resp := exchange(t, r, newQuery(name, dns.TypeA))
		if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
			t.Fatalf("%s: %v", name, resp)
		}
	}
	// The dead upstream is tried at most once or twice (both unmeasured at
	// first); after failing it is marked down and the live one goes first.
	if n := dead.queries.Load(); n > 2 {
		t.Fatalf("dead upstream asked %d times for 3 names; it should be marked down", n)
	}
	if n := live.queries.Load(); n != 3 {
		t.Fatalf("live upstream asked %d times, want 3", n)
	}
}

func TestResolverFailsOverOnServfail(t *testing.T) {
	bad := newTestUpstream(t)
	bad.setMode("fail")
	good := newTestUpstream(t)
	r := newTestResolver(t, ResolverConfig{Upstreams: []string{"udp://" + bad.Addr, "udp://" + good.Addr}})
	for _, name := range []string{"a.example", "b.example"} {
		resp := exchange(t, r, newQuery(name, dns.TypeA))
		if resp.Rcode != dns.RcodeSuccess {
			t.Fatalf("%s: %v", name, resp)
		}
	}
}

func TestResolverServfailWhenAllFail(t *testing.T) {
	for _, mode := range []string{"drop", "closed"} {
		t.Run(mode, func(t *testing.T) {
			var urls []string
			for range 2 {
				up := newTestUpstream(t)
				up.setMode("drop")
				urls = append(urls, "udp://"+up.Addr)
			}
			if mode == "closed" {
				// Nothing listens: a refused TCP port.
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				urls = []string{"tcp://" + ln.Addr().String()}
				ln.Close()
			}
			const budget = 600 * time.Millisecond
			r := newTestResolver(t, ResolverConfig{Upstreams: urls, AttemptTimeout: 100 * time.Millisecond, Timeout: budget})
			m := newQuery("www.example", dns.TypeA)
			m.SetEdns0(1232, false)
			start := time.Now()
			resp := exchange(t, r, m)
			took := time.Since(start)
			if resp.Rcode != dns.RcodeServerFailure {
				t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
			}
			// Bounded by Timeout; the slack is for a loaded machine.
			if took > budget+2*time.Second {
				t.Fatalf("SERVFAIL took %v, budget %v", took, budget)
			}
			ede := findEDE(resp)
			if ede == nil {
				t.Fatalf("SERVFAIL without an extended error: %v", resp)
			}
			want := dns.ExtendedErrorCodeNoReachableAuthority
			if mode == "closed" {
				want = dns.ExtendedErrorCodeNetworkError
			}
			if ede.InfoCode != want {
				t.Fatalf("extended error %d (%s), want %d", ede.InfoCode, ede.ExtraText, want)
			}
		})
	}
}

func findEDE(m *dns.Msg) *dns.EDNS0_EDE {
	opt := m.IsEdns0()
	if opt == nil {
		return nil
	}
	for _, o := range opt.Option {
		if e, ok := o.(*dns.EDNS0_EDE); ok {
			return e
		}
	}
	return nil
}

func TestResolverStripsClientSubnet(t *testing.T) {
	up := newTestUpstream(t)
	r := newTestResolver(t, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}})
	m := newQuery("www.example", dns.TypeA)
	m.SetEdns0(1232, true)
	opt := m.IsEdns0()
	opt.Option = append(opt.Option,
		&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.ParseIP("198.51.100.0").To4()},
		&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
	exchange(t, r, m)
	got := up.lastQuery()
	if got == nil {
		t.Fatal("upstream saw no query")
	}
	gopt := got.IsEdns0()
	if gopt == nil || !gopt.Do() {
		t.Fatalf("upstream query lost EDNS or DO: %v", got)
	}
	if len(gopt.Option) != 0 {
		t.Fatalf("upstream query carried options %v; Client Subnet must be stripped", gopt.Option)
	}
}

func TestResolverPassesDNSSECBits(t *testing.T) {
	up := newTestUpstream(t)
	r := newTestResolver(t, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}})
	m := newQuery("www.example", dns.TypeA)
	m.CheckingDisabled = true
	m.SetEdns0(1232, true)
	resp := exchange(t, r, m)
	got := up.lastQuery()
	if !got.CheckingDisabled || !got.IsEdns0().Do() {
		t.Fatalf("upstream query lost CD or DO: %v", got)
	}
	if !resp.CheckingDisabled || resp.IsEdns0() == nil || !resp.IsEdns0().Do() {
		t.Fatalf("answer lost CD or DO: %v", resp)
	}
}

func TestResolverRejectsBadUpstreams(t *testing.T) {
	for _, u := range []string{
		"ftp://127.0.0.1", "udp://", "udp://127.0.0.1:99999", "tcp://127.0.0.1:x",
		"udp://127.0.0.1/path", "https://", "tls://user@127.0.0.1", "%zz",
	} {
		t.Run(u, func(t *testing.T) {
			r, err := NewResolver(ResolverConfig{Upstreams: []string{"udp://127.0.0.1:53", u}})
			if err == nil {
				r.Close()
				t.Fatalf("NewResolver accepted upstream %q", u)
			}
			if !strings.Contains(err.Error(), u) {
				t.Fatalf("error %q does not name %q", err, u)
			}
		})
	}
}

func TestResolverReadsResolvConf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(path, []byte("search example\nnameserver 127.0.0.1\nnameserver ::1\noptions ndots:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// resolv.conf has no port syntax, so nothing here can listen where it
	// points: check what is read, and never send to it.
	urls, err := systemUpstreams(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(urls) != 2 || urls[0] != "udp://127.0.0.1:53" || urls[1] != "udp://[::1]:53" {
		t.Fatalf("upstreams from resolv.conf: %v", urls)
	}
	if _, err := NewResolver(ResolverConfig{ResolvConf: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Fatal("NewResolver with a missing resolv.conf and no upstreams succeeded")
	}
}

func TestResolverClose(t *testing.T) {
	up := newTestUpstream(t)
	up.setMode("drop")
	r, err := NewResolver(ResolverConfig{Upstreams: []string{"udp://" + up.Addr}, Timeout: time.Minute, AttemptTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.Exchange(context.Background(), newQuery("www.example", dns.TypeA))
		done <- err
	}()
	waitFor(t, "the query to reach the upstream", func() bool { return up.queries.Load() > 0 })
	start := time.Now()
	r.Close()
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Close took %v with a query in flight", took)
	}
	<-done
	if _, err := r.Exchange(context.Background(), newQuery("x.example", dns.TypeA)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Exchange after Close: %v, want ErrClosed", err)
	}
}

func TestResolverContextCancel(t *testing.T) {
	up := newTestUpstream(t)
	up.setMode("drop")
	r := newTestResolver(t, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}, Timeout: 10 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := r.Exchange(ctx, newQuery("www.example", dns.TypeA)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Exchange with an expiring ctx: %v", err)
	}
}

func TestResolverOddQueries(t *testing.T) {
	up := newTestUpstream(t)
	r := newTestResolver(t, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}})
	noQuestion := new(dns.Msg)
	noQuestion.Id = 7
	notify := newQuery("www.example", dns.TypeSOA)
	notify.Opcode = dns.OpcodeNotify
	axfr := newQuery("example", dns.TypeAXFR)
	badVers := newQuery("www.example", dns.TypeA)
	badVers.SetEdns0(1232, false)
	badVers.IsEdns0().SetVersion(1)
	for _, tt := range []struct {
		name  string
		m     *dns.Msg
		rcode int
	}{
		{"no question", noQuestion, dns.RcodeFormatError},
		{"notify", notify, dns.RcodeNotImplemented},
		{"axfr", axfr, dns.RcodeRefused},
		{"edns version 1", badVers, dns.RcodeBadVers},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := r.Exchange(context.Background(), tt.m)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Rcode != tt.rcode || resp.Id != tt.m.Id {
				t.Fatalf("rcode %s id %d, want %s id %d", dns.RcodeToString[resp.Rcode], resp.Id, dns.RcodeToString[tt.rcode], tt.m.Id)
			}
		})
	}
	if n := up.queries.Load(); n != 0 {
		t.Fatalf("odd queries reached the upstream %d times", n)
	}
}

func TestResolverResendsLostUDP(t *testing.T) {
	up := newTestUpstream(t)
	const attempt = 5 * time.Second
	r := newTestResolver(t, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}, AttemptTimeout: attempt, Timeout: 3 * attempt})
	exchange(t, r, newQuery("www.example", dns.TypeA)) // measures the round trip
	start := time.Now()
	resp := exchange(t, r, newQuery("lossy.example", dns.TypeA))
	if len(resp.Answer) != 1 {
		t.Fatalf("answer: %v", resp)
	}
	// The resend comes after 100 ms (4 round trips at least that); a new
	// attempt would come only after the attempt timeout.
	if took := time.Since(start); took >= attempt {
		t.Fatalf("lost query answered after %v: no resend before the attempt timeout", took)
	}
	if n := up.udp.Load(); n < 3 {
		t.Fatalf("upstream saw %d UDP queries, want 3 or more (one, then the lost one resent)", n)
	}
}

func TestResolverFailsOverFromClosedUDPPort(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := pc.LocalAddr().String()
	pc.Close() // nothing listens: the kernel answers port unreachable
	live := newTestUpstream(t)
	r := newTestResolver(t, ResolverConfig{Upstreams: []string{"udp://" + closed, "udp://" + live.Addr}, AttemptTimeout: 5 * time.Second})
	start := time.Now()
	for _, name := range []string{"a.example", "b.example", "c.example"} {
		if resp := exchange(t, r, newQuery(name, dns.TypeA)); len(resp.Answer) != 1 {
			t.Fatalf("%s: %v", name, resp)
		}
	}
	// A refused port fails at once rather than after the attempt timeout.
	if took := time.Since(start); took >= 5*time.Second {
		t.Fatalf("took %v: the closed port was waited on", took)
	}
}

func TestResolverBoundsFlights(t *testing.T) {
	up := newTestUpstream(t)
	r := newTestResolver(t, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}, MaxFlights: 1, Timeout: 20 * time.Second, AttemptTimeout: 20 * time.Second})
	done := make(chan *dns.Msg, 1)
	go func() {
		resp, _ := r.Exchange(context.Background(), newQuery("gated.example", dns.TypeA))
		done <- resp
	}()
	waitFor(t, "the first flight", func() bool { return up.queries.Load() == 1 })
	m := newQuery("www.example", dns.TypeA)
	m.SetEdns0(1232, false)
	resp := exchange(t, r, m)
	if resp.Rcode != dns.RcodeServerFailure || findEDE(resp) == nil {
		t.Fatalf("a query past MaxFlights: %v", resp)
	}
	close(up.gate)
	if resp := <-done; resp == nil || len(resp.Answer) != 1 {
		t.Fatalf("the query in flight: %v", resp)
	}
	if resp := exchange(t, r, newQuery("www.example", dns.TypeA)); len(resp.Answer) != 1 {
		t.Fatalf("after the flight landed: %v", resp)
	}
}
