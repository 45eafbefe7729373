package doh

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// seedQueries are well-formed queries for the fuzzers to start from.
func seedQueries(t testing.TB) [][]byte {
	plain := newQuery("www.example", dns.TypeA)
	edns := newQuery("Two.Example", dns.TypeAAAA)
	edns.SetEdns0(1232, true)
	edns.IsEdns0().Option = append(edns.IsEdns0().Option,
		&dns.EDNS0_PADDING{Padding: make([]byte, 8)},
		&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: []byte{198, 51, 100, 0}})
	none := new(dns.Msg)
	return [][]byte{packQuery(t, plain), packQuery(t, edns), packQuery(t, none), []byte("\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01")}
}

func FuzzParseQuery(f *testing.F) {
	for _, q := range seedQueries(f) {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		var q query
		if err := parseQuery(msg, &q); err != nil {
			return
		}
		// Whatever parses can be answered, and the answer is a message.
		out := appendError(nil, &q, msg, dns.RcodeServerFailure, edeOption(dns.ExtendedErrorCodeOther, "x"))
		m := new(dns.Msg)
		if err := m.Unpack(out); err != nil {
			t.Fatalf("answer to %x does not unpack: %v\n%x", msg, err, out)
		}
		if m.Id != q.id || !m.Response || m.Rcode != dns.RcodeServerFailure {
			t.Fatalf("answer header: %v", m.MsgHdr)
		}
		if q.qdcount != 1 {
			return
		}
		if len(q.name) == 0 || q.name[len(q.name)-1] != 0 || len(q.keyBytes) != len(q.name)+5 {
			t.Fatalf("name %x key %x", q.name, q.keyBytes)
		}
		// The key ignores case.
		upper := bytes.Clone(msg)
		for i := q.nameOff; i < q.nameOff+len(q.name); i++ {
			if 'a' <= upper[i] && upper[i] <= 'z' {
				upper[i] -= 'a' - 'A'
			}
		}
		var q2 query
		if err := parseQuery(upper, &q2); err != nil {
			t.Fatalf("upper-cased query does not parse: %v", err)
		}
		if !bytes.Equal(q.keyBytes, q2.keyBytes) {
			t.Fatalf("keys differ by case: %x %x", q.keyBytes, q2.keyBytes)
		}
	})
}

// canned answers every query with one A record, without sockets, so the
// handler fuzzer runs fast.
func canned(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	r := new(dns.Msg)
	r.SetReply(m)
	if len(m.Question) == 1 {
		r.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: m.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: []byte{192, 0, 2, 1}}}
	}
	if opt := m.IsEdns0(); opt != nil {
		r.SetEdns0(1232, opt.Do())
	}
	return r, nil
}

func FuzzHandler(f *testing.F) {
	for _, q := range seedQueries(f) {
		f.Add("GET", base64.RawURLEncoding.EncodeToString(q), []byte(nil), "")
		f.Add("POST", "", q, "application/dns-message")
	}
	f.Add("GET", "%3D%zz", []byte(nil), "")
	f.Add("POST", "dns=AAAA", []byte{0}, "application/dns-message; q=1")
	up := newTestUpstream(f)
	r, err := NewResolver(ResolverConfig{Upstreams: []string{"udp://" + up.Addr}, Timeout: time.Second})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { r.Close() })
	handlers := []*Handler{{Resolver: r}, {Resolver: exchangerFunc(canned)}}
	f.Fuzz(func(t *testing.T, method, rawQuery string, body []byte, contentType string) {
		for _, h := range handlers {
			req := httptest.NewRequest("GET", "/dns-query", bytes.NewReader(body))
			req.Method = method
			req.URL.RawQuery = rawQuery
			req.Header.Set("Content-Type", contentType)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				if w.Code < 400 || w.Code > 499 {
					t.Fatalf("status %d for %s %q", w.Code, method, rawQuery)
				}
				continue
			}
			m := new(dns.Msg)
			if err := m.Unpack(w.Body.Bytes()); err != nil && method != "HEAD" {
				t.Fatalf("200 with a body that does not unpack: %v", err)
			}
		}
	})
}
