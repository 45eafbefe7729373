package testenv

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
	"github.com/porta443/porta/internal/sameport"
)

// Upstream is an authoritative DNS server on 127.0.0.1 (UDP and TCP, one
// port) for the names it is given: A and AAAA from their addresses, the
// records added with Add, NXDOMAIN for any other name. It stands in for
// the resolver a server forwards to, so that no test asks anything beyond
// loopback.
type Upstream struct {
	Addr    string // host:port
	Queries atomic.Int64
	names   map[string][]netip.Addr

	mu    sync.Mutex
	added map[string][]dns.RR // by canonical name
}

// Add makes u answer queries for rr's name and type with rr too.
func (u *Upstream) Add(rr dns.RR) {
	u.mu.Lock()
	defer u.mu.Unlock()
	name := dns.CanonicalName(rr.Header().Name)
	u.added[name] = append(u.added[name], rr)
}

// NewUpstream starts an Upstream for names (FQDN or not → addresses); it
// stops when the test ends.
func NewUpstream(t testing.TB, names map[string][]string) *Upstream {
	t.Helper()
	u := &Upstream{names: map[string][]netip.Addr{}, added: map[string][]dns.RR{}}
	for name, addrs := range names {
		for _, a := range addrs {
			u.names[dns.CanonicalName(name)] = append(u.names[dns.CanonicalName(name)], netip.MustParseAddr(a))
		}
	}
	ln, pc, err := sameport.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.Addr = pc.LocalAddr().String()
	var started sync.WaitGroup
	started.Add(2)
	udp := &dns.Server{PacketConn: pc, Handler: u, NotifyStartedFunc: started.Done}
	tcp := &dns.Server{Listener: ln, Handler: u, NotifyStartedFunc: started.Done}
	var served sync.WaitGroup
	served.Go(func() { udp.ActivateAndServe() })
	served.Go(func() { tcp.ActivateAndServe() })
	started.Wait() // a Shutdown before the start would leave the server running
	t.Cleanup(func() {
		udp.Shutdown()
		tcp.Shutdown()
		served.Wait()
	})
	return u
}

// URL is the upstream as --upstream takes it.
func (u *Upstream) URL() string { return "udp://" + u.Addr }

func (u *Upstream) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	u.Queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	if len(q.Question) != 1 {
		m.SetRcode(q, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	question := q.Question[0]
	addrs, ok := u.names[dns.CanonicalName(question.Name)]
	u.mu.Lock()
	added := u.added[dns.CanonicalName(question.Name)]
	u.mu.Unlock()
	for _, rr := range added {
		if rr.Header().Rrtype == question.Qtype {
			m.Answer = append(m.Answer, dns.Copy(rr))
		}
	}
	if !ok && len(added) == 0 {
		m.SetRcode(q, dns.RcodeNameError)
		m.Ns = []dns.RR{&dns.SOA{
			Hdr: dns.RR_Header{Name: "test.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
			Ns:  "ns.test.", Mbox: "admin.test.", Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 30,
		}}
	}
	hdr := dns.RR_Header{Name: question.Name, Rrtype: question.Qtype, Class: dns.ClassINET, Ttl: 300}
	for _, a := range addrs {
		switch {
		case question.Qtype == dns.TypeA && a.Is4():
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: a.AsSlice()})
		case question.Qtype == dns.TypeAAAA && a.Is6():
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
		}
	}
	w.WriteMsg(m)
}
