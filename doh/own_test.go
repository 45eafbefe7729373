package doh

import (
	"testing"

	"github.com/miekg/dns"
)

// ownTXT owns "mine.example.": TXT queries for it get a record of its
// own; it passes every other query on.
type ownTXT struct{ asked []string }

func (o *ownTXT) Records(name string, qtype uint16) ([]dns.RR, bool) {
	o.asked = append(o.asked, name)
	if name != "mine.example." || qtype != dns.TypeTXT {
		return nil, false
	}
	return []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300}, Txt: []string{"own"}}}, true
}

// TestHandlerOwnRecords: Own answers the queries it owns, whatever their
// case, with the query's ID and EDNS, padded when asked, its records'
// TTL as the max-age, without asking the upstream; everything else goes
// to the resolver.
func TestHandlerOwnRecords(t *testing.T) {
	up := newTestUpstream(t)
	r := newTestResolver(t, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}})
	own := &ownTXT{}
	srv := serveTest(t, &Handler{Resolver: r, Own: own})
	c, base := srv.client(t, "h2")
	post := func(m *dns.Msg) (*dns.Msg, string) {
		t.Helper()
		a, body, res := postQuery(t, c, base, m)
		if len(body)%468 != 0 && m.IsEdns0() != nil {
			t.Errorf("%d bytes: not padded", len(body))
		}
		return a, res.Header.Get("Cache-Control")
	}
	q := newQuery("MINE.example", dns.TypeTXT)
	q.Id = 4242
	q.SetEdns0(1232, false)
	q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_PADDING{Padding: make([]byte, 8)})
	before := up.queries.Load()
	a, cc := post(q)
	if a.Id != 4242 || !a.Authoritative || len(a.Answer) != 1 || a.Answer[0].(*dns.TXT).Txt[0] != "own" || a.IsEdns0() == nil || cc != "max-age=300" {
		t.Fatalf("own answer (%s):\n%v", cc, a)
	}
	if up.queries.Load() != before {
		t.Error("an own name was asked upstream")
	}
	if own.asked[0] != "mine.example." {
		t.Errorf("Own was asked %q, want the name in lower case", own.asked[0])
	}
	a, _ = post(newQuery("www.example", dns.TypeA))
	if len(a.Answer) == 0 || up.queries.Load() == before {
		t.Errorf("another name: %v, want the upstream's answer", a)
	}
	a, _ = post(newQuery("mine.example", dns.TypeA))
	if a.Authoritative && len(a.Answer) > 0 {
		t.Errorf("another type of an own name: %v, want the resolver's answer", a)
	}
}
