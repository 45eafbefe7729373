package doh

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestResolverStats counts each kind of answer by the amount it was given.
func TestResolverStats(t *testing.T) {
	up := newTestUpstream(t)
	clock := newFakeClock()
	r := newTestResolver(t, ResolverConfig{Upstreams: []string{up.Addr}, StaleAfter: time.Millisecond})
	r.now = clock.Now

	exchange(t, r, newQuery("a.example", dns.TypeA)) // miss
	exchange(t, r, newQuery("a.example", dns.TypeA)) // hit
	exchange(t, r, newQuery("a.example", dns.TypeA)) // hit
	msg, _ := newQuery("a.example", dns.TypeA).Pack()
	if _, ok := r.AppendCached(nil, msg, 4096); !ok { // hit
		t.Fatal("AppendCached: no hit")
	}
	exchange(t, r, newQuery("fail.example", dns.TypeA)) // failed
	axfr := newQuery("a.example", dns.TypeAXFR)
	exchange(t, r, axfr) // rejected
	clock.Advance(400 * time.Second)
	up.setMode("drop")
	exchange(t, r, newQuery("a.example", dns.TypeA)) // stale

	got := r.Stats()
	want := map[int]uint64{AnswerHit: 3, AnswerMiss: 1, AnswerStale: 1, AnswerFailed: 1, AnswerRejected: 1}
	names := AnswerSourceNames()
	for i, n := range got.Answers {
		if n != want[i] {
			t.Errorf("answers %s: %d, want %d", names[i], n, want[i])
		}
	}
	if len(got.Upstreams) != 1 || got.Upstreams[0].Name != "udp://"+up.Addr {
		t.Fatalf("upstreams: %+v", got.Upstreams)
	}
	u := got.Upstreams[0]
	// a.example and fail.example answered (SERVFAIL is an answer); the
	// stale round's tries failed.
	if n := u.RTT.Count(); n != 2 {
		t.Errorf("RTT observations: %d, want 2", n)
	}
	if u.RTT.Sum <= 0 {
		t.Errorf("RTT sum %v", u.RTT.Sum)
	}
	// The stale answer went out while the flight still waits for the
	// dropped query; its try fails once AttemptTimeout is over.
	waitFor(t, "the dropped query's failure", func() bool { return r.Stats().Upstreams[0].Failures > 0 })
}

// TestHandlerStats counts the DoH responses by status.
func TestHandlerStats(t *testing.T) {
	up := newTestUpstream(t)
	h := &Handler{Resolver: newTestResolver(t, ResolverConfig{Upstreams: []string{up.Addr}})}
	srv := serveTest(t, h)
	c, base := srv.client(t, "h2")
	msg, _ := newQuery("a.example", dns.TypeA).Pack()
	get := func(query string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+"/dns-query"+query, nil)
		req.Header.Set("Accept", MediaType)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get("?dns=" + base64.RawURLEncoding.EncodeToString(msg))
	get("?dns=" + base64.RawURLEncoding.EncodeToString(msg))
	get("?dns=!!")
	resp, err := c.Post(base+"/dns-query", "text/plain", bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodPut, base+"/dns-query", nil)
	if resp, err = c.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	got := h.Stats()
	want := map[int]uint64{200: 2, 400: 1, 415: 1, 405: 1}
	for code, n := range got.Responses {
		if n != want[code] {
			t.Errorf("status %d: %d, want %d", code, n, want[code])
		}
	}
	if got.Total() != 5 {
		t.Errorf("total %d, want 5", got.Total())
	}
}
