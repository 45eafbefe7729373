package doh

import (
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// discardWriter is the least an http.ResponseWriter can be.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(s int)           { w.status = s }
func (w *discardWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }

// BenchmarkHandlerHit is the cost of a cache hit in the handler, without
// HTTP: the path that has to be cheap.
func BenchmarkHandlerHit(b *testing.B) {
	up := newTestUpstream(b)
	r := newTestResolver(b, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}})
	h := &Handler{Resolver: r}
	m := newQuery("www.example", dns.TypeA)
	m.Id = 0
	m.SetEdns0(1232, false)
	u, _ := url.Parse("https://127.0.0.1/dns-query?dns=" + b64(packQuery(b, m)))
	req := &http.Request{Method: "GET", URL: u, Header: http.Header{"Accept": {MediaType}}}
	req = req.WithContext(b.Context())
	w := &discardWriter{h: http.Header{}}
	h.ServeHTTP(w, req)
	if w.status != 200 {
		b.Fatalf("status %d", w.status)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, req)
		}
	})
}

// BenchmarkResolverHit is a cache hit through the Exchange API.
func BenchmarkResolverHit(b *testing.B) {
	up := newTestUpstream(b)
	r := newTestResolver(b, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}})
	m := newQuery("www.example", dns.TypeA)
	if _, err := r.Exchange(b.Context(), m); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Exchange(b.Context(), m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandlerMiss is a cache miss in the handler: every query a new
// name, answered by a UDP upstream on loopback.
func BenchmarkHandlerMiss(b *testing.B) {
	up := newTestUpstream(b)
	r := newTestResolver(b, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}})
	h := &Handler{Resolver: r}
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(64)
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			m := newQuery(fmt.Sprintf("n%d.example", next.Add(1)), dns.TypeA)
			m.SetEdns0(1232, false)
			u, _ := url.Parse("https://127.0.0.1/dns-query?dns=" + b64(packQuery(b, m)))
			req := (&http.Request{Method: "GET", URL: u, Header: http.Header{}}).WithContext(b.Context())
			clear(w.h)
			h.ServeHTTP(w, req)
			if w.status != 200 {
				b.Fatalf("status %d", w.status)
			}
		}
	})
}
