package doh

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/miekg/dns"
)

// TestClientHonoursAgeAndMaxAge: TTLs in a DoH answer are lowered to its
// HTTP freshness (max-age), less the time an HTTP cache held it (Age).
func TestClientHonoursAgeAndMaxAge(t *testing.T) {
	for _, tc := range []struct {
		age, cacheControl string
		want              []uint32
	}{
		{"", "", []uint32{300, 200}},
		{"", "max-age=250", []uint32{250, 200}},
		{"100", "max-age=250", []uint32{150, 100}},
		{"100", "", []uint32{200, 100}},
		{"500", "public, max-age=250", []uint32{0, 0}},
		{"junk", "max-age=junk", []uint32{300, 200}},
	} {
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			m := new(dns.Msg)
			m.SetQuestion("www.example.", dns.TypeA)
			m.Response = true
			m.Answer = []dns.RR{
				&dns.CNAME{Hdr: dns.RR_Header{Name: "www.example.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 300}, Target: "a.example."},
				&dns.A{Hdr: dns.RR_Header{Name: "a.example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 200}, A: []byte{192, 0, 2, 1}},
			}
			wire, _ := m.Pack()
			if tc.age != "" {
				w.Header().Set("Age", tc.age)
			}
			if tc.cacheControl != "" {
				w.Header().Set("Cache-Control", tc.cacheControl)
			}
			w.Header().Set("Content-Type", MediaType)
			w.Write(wire)
		}))
		c := &Client{URL: srv.URL + "/dns-query", HTTPClient: srv.Client()}
		q := new(dns.Msg)
		q.SetQuestion("www.example.", dns.TypeA)
		resp, err := c.Exchange(t.Context(), q)
		srv.Close()
		if err != nil {
			t.Fatalf("Age %q, Cache-Control %q: %v", tc.age, tc.cacheControl, err)
		}
		for i, rr := range resp.Answer {
			if rr.Header().Ttl != tc.want[i] {
				t.Errorf("Age %q, Cache-Control %q: %s TTL %d, want %d", tc.age, tc.cacheControl, rr.Header().Name, rr.Header().Ttl, tc.want[i])
			}
		}
	}
}
