package doh

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func packQuery(t testing.TB, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestHandlerStatus(t *testing.T) {
	up := newTestUpstream(t)
	r := newTestResolver(t, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}})
	srv := serveTest(t, &Handler{Resolver: r})

	q := packQuery(t, newQuery("www.example", dns.TypeA))
	nx := packQuery(t, newQuery("nx.example", dns.TypeA))
	resp := newQuery("www.example", dns.TypeA)
	resp.Response = true
	padded := base64.URLEncoding.EncodeToString(q)
	if !strings.HasSuffix(padded, "=") {
		t.Fatalf("test query %q encodes without padding", padded)
	}
	tests := []struct {
		name        string
		method      string
		query       string // raw query string for GET/HEAD
		body        []byte
		contentType string
		accept      string
		status      int
		allow       string // expected Allow header
	}{
		{name: "get", method: "GET", query: "dns=" + b64(q), status: 200},
		{name: "get padded base64", method: "GET", query: "dns=" + padded, status: 200},
		{name: "get padded percent-encoded", method: "GET", query: "dns=" + strings.ReplaceAll(padded, "=", "%3D"), status: 200},
		{name: "get other params", method: "GET", query: "ct=x&dns=" + b64(q) + "&z=1", status: 200},
		{name: "get nxdomain", method: "GET", query: "dns=" + b64(nx), status: 200},
		{name: "head", method: "HEAD", query: "dns=" + b64(q), status: 200},
		{name: "get no param", method: "GET", query: "", status: 400},
		{name: "get empty param", method: "GET", query: "dns=", status: 400},
		{name: "get not base64", method: "GET", query: "dns=!!!!", status: 400},
		{name: "get standard base64", method: "GET", query: "dns=" + base64.StdEncoding.EncodeToString(append(q, 0xfb, 0xff)), status: 400},
		{name: "get garbage", method: "GET", query: "dns=" + b64([]byte("hello, world")), status: 400},
		{name: "get short", method: "GET", query: "dns=" + b64(q[:11]), status: 400},
		{name: "get response", method: "GET", query: "dns=" + b64(packQuery(t, resp)), status: 400},
		{name: "get too long", method: "GET", query: "dns=" + strings.Repeat("A", 90000), status: 414},
		{name: "post", method: "POST", body: q, contentType: "application/dns-message", status: 200},
		{name: "post with params", method: "POST", body: q, contentType: "Application/DNS-Message; charset=binary", status: 200},
		{name: "post empty", method: "POST", body: nil, contentType: "application/dns-message", status: 400},
		{name: "post garbage", method: "POST", body: []byte("\x00\x01garbage"), contentType: "application/dns-message", status: 400},
		{name: "post trailing bytes", method: "POST", body: append(q, 0), contentType: "application/dns-message", status: 400},
		{name: "post too large", method: "POST", body: make([]byte, 65536), contentType: "application/dns-message", status: 413},
		{name: "post other type", method: "POST", body: q, contentType: "application/octet-stream", status: 415},
		{name: "post no type", method: "POST", body: q, status: 415},
		{name: "put", method: "PUT", body: q, contentType: "application/dns-message", status: 405, allow: "GET, HEAD, POST"},
		{name: "delete", method: "DELETE", status: 405, allow: "GET, HEAD, POST"},
		{name: "accept dns", method: "GET", query: "dns=" + b64(q), accept: "application/dns-message", status: 200},
		{name: "accept any", method: "GET", query: "dns=" + b64(q), accept: "text/html, */*;q=0.1", status: 200},
		{name: "accept application/*", method: "GET", query: "dns=" + b64(q), accept: "application/*", status: 200},
		{name: "accept html", method: "GET", query: "dns=" + b64(q), accept: "text/html", status: 406},
		{name: "accept dns q=0", method: "GET", query: "dns=" + b64(q), accept: "*/*, application/dns-message;q=0", status: 406},
		{name: "accept json", method: "POST", body: q, contentType: "application/dns-message", accept: "application/dns-json", status: 406},
	}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			c, base := srv.client(t, mode)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					url := base + "/dns-query"
					if tt.query != "" {
						url += "?" + tt.query
					}
					var body io.Reader
					if tt.body != nil {
						body = bytes.NewReader(tt.body)
					}
					req, err := http.NewRequestWithContext(t.Context(), tt.method, url, body)
					if err != nil {
						t.Fatal(err)
					}
					if tt.contentType != "" {
						req.Header.Set("Content-Type", tt.contentType)
					}
					if tt.accept != "" {
						req.Header.Set("Accept", tt.accept)
					}
					res, err := c.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					defer res.Body.Close()
					got, err := io.ReadAll(res.Body)
					if err != nil {
						t.Fatal(err)
					}
					if res.StatusCode != tt.status {
						t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.status, got)
					}
					if tt.allow != "" && res.Header.Get("Allow") != tt.allow {
						t.Fatalf("Allow %q, want %q", res.Header.Get("Allow"), tt.allow)
					}
					if res.StatusCode != 200 {
						return
					}
					if ct := res.Header.Get("Content-Type"); ct != "application/dns-message" {
						t.Fatalf("Content-Type %q", ct)
					}
					if tt.method == "HEAD" {
						if len(got) != 0 {
							t.Fatalf("HEAD answered with a %d-byte body", len(got))
						}
						return
					}
					m := new(dns.Msg)
					if err := m.Unpack(got); err != nil {
						t.Fatalf("answer does not unpack: %v", err)
					}
					if !m.Response || len(m.Question) != 1 || m.Question[0].Name != "www.example." && m.Question[0].Name != "nx.example." {
						t.Fatalf("answer: %v", m)
					}
				})
			}
		})
	}
}

func TestHandlerMaxAge(t *testing.T) {
	up := newTestUpstream(t)
	r := newTestResolver(t, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}, NoPrefetch: true})
	clock := newFakeClock()
	r.now = clock.Now
	srv := serveTest(t, &Handler{Resolver: r})
	c, base := srv.client(t, "h2")
	get := func(name string) (*http.Response, *dns.Msg) {
		t.Helper()
		m := newQuery(name, dns.TypeA)
		m.Id = 0x1234
		res, err := c.Get(base + "/dns-query?dns=" + b64(packQuery(t, m)))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 {
			t.Fatalf("%s: status %d: %s", name, res.StatusCode, body)
		}
		a := new(dns.Msg)
		if err := a.Unpack(body); err != nil {
			t.Fatal(err)
		}
		if a.Id != 0x1234 {
			t.Fatalf("ID %#x not echoed", a.Id)
		}
		return res, a
	}
	for _, tt := range []struct {
		name    string
		advance int
		maxAge  string
		rcode   int
	}{
		{"www.example", 0, "max-age=300", dns.RcodeSuccess},
		{"two.example", 0, "max-age=60", dns.RcodeSuccess},    // the smallest TTL
		{"nx.example", 0, "max-age=60", dns.RcodeNameError},   // min(SOA TTL 300, MINIMUM 60)
		{"nodata.example", 0, "max-age=30", dns.RcodeSuccess}, // min(SOA TTL 30, MINIMUM 600)
		{"fail.example", 0, "max-age=0", dns.RcodeServerFailure},
		{"two.example", 20, "max-age=40", dns.RcodeSuccess}, // counts down from the cache
		{"nx.example", 0, "max-age=40", dns.RcodeNameError},
	} {
		clock.Advance(time.Duration(tt.advance) * time.Second)
		res, a := get(tt.name)
		if got := res.Header.Get("Cache-Control"); got != tt.maxAge {
			t.Errorf("%s: Cache-Control %q, want %q", tt.name, got, tt.maxAge)
		}
		if a.Rcode != tt.rcode {
			t.Errorf("%s: rcode %s, want %s", tt.name, dns.RcodeToString[a.Rcode], dns.RcodeToString[tt.rcode])
		}
	}
}

func TestHandlerPadding(t *testing.T) {
	up := newTestUpstream(t)
	r := newTestResolver(t, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}})
	for _, backend := range []string{"resolver", "exchanger"} {
		t.Run(backend, func(t *testing.T) {
			var ex Exchanger = r
			if backend == "exchanger" {
				ex = exchangerFunc(r.Exchange) // hides the wire-form path
			}
			srv := serveTest(t, &Handler{Resolver: ex})
			c, base := srv.client(t, "h2")
			for _, tt := range []struct {
				name   string
				edns   bool
				padded bool
			}{
				{"www.example", false, false},
				{"www.example", true, false},
				{"www.example", true, true},
				{"two.example", true, true},
				{"trunc.example", true, true}, // bigger than one block
				{"nx.example", true, true},
			} {
				m := newQuery(tt.name, dns.TypeA)
				if tt.edns {
					m.SetEdns0(1232, false)
					if tt.padded {
						opt := m.IsEdns0()
						opt.Option = append(opt.Option, &dns.EDNS0_PADDING{Padding: make([]byte, 10)})
					}
				}
				a, body, _ := postQuery(t, c, base, m)
				hasPad := false
				if opt := a.IsEdns0(); opt != nil {
					for _, o := range opt.Option {
						_, ok := o.(*dns.EDNS0_PADDING)
						hasPad = hasPad || ok
					}
				}
				if (a.IsEdns0() != nil) != tt.edns || hasPad != tt.padded {
					t.Fatalf("%+v: EDNS %v, padding %v:\n%v", tt, a.IsEdns0() != nil, hasPad, a)
				}
				if tt.padded && len(body)%468 != 0 {
					t.Fatalf("%+v: padded answer is %d bytes, not a multiple of 468", tt, len(body))
				}
			}
		})
	}
}

// postQuery POSTs m to the DoH at base and returns the answer, its wire
// form and the response.
func postQuery(t *testing.T, c *http.Client, base string, m *dns.Msg) (*dns.Msg, []byte, *http.Response) {
	t.Helper()
	res, err := c.Post(base+"/dns-query", MediaType, bytes.NewReader(packQuery(t, m)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	a := new(dns.Msg)
	if err := a.Unpack(body); err != nil {
		t.Fatalf("%v: %v", m.Question, err)
	}
	return a, body, res
}

type exchangerFunc func(context.Context, *dns.Msg) (*dns.Msg, error)

func (f exchangerFunc) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) { return f(ctx, m) }

// TestHandlerEarlyData pins the 0-RTT rule: a request that arrived before
// the handshake completed (quic-go's http3 sets r.TLS from a connection
// state whose HandshakeComplete is false) is served only for GET and HEAD.
func TestHandlerEarlyData(t *testing.T) {
	up := newTestUpstream(t)
	r := newTestResolver(t, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}})
	h := &Handler{Resolver: r}
	q := packQuery(t, newQuery("www.example", dns.TypeA))
	for _, tt := range []struct {
		method   string
		complete bool
		status   int
	}{
		{"POST", false, http.StatusTooEarly},
		{"GET", false, 200},
		{"HEAD", false, 200},
		{"POST", true, 200},
	} {
		var req *http.Request
		if tt.method == "POST" {
			req = httptest.NewRequest("POST", "/dns-query", bytes.NewReader(q))
			req.Header.Set("Content-Type", MediaType)
		} else {
			req = httptest.NewRequest(tt.method, "/dns-query?dns="+b64(q), nil)
		}
		req.TLS = &tls.ConnectionState{HandshakeComplete: tt.complete}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != tt.status {
			t.Errorf("%s handshake complete=%v: status %d, want %d", tt.method, tt.complete, w.Code, tt.status)
		}
	}
}

// TestHandlerNeverTruncates asks with a 512-byte EDNS size for an answer
// that only fits over TCP: over HTTP it comes whole.
func TestHandlerNeverTruncates(t *testing.T) {
	up := newTestUpstream(t)
	r := newTestResolver(t, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}})
	for _, backend := range []Exchanger{r, exchangerFunc(r.Exchange)} {
		srv := serveTest(t, &Handler{Resolver: backend})
		hc, base := srv.client(t, "h2")
		m := newQuery("trunc.example", dns.TypeA)
		m.SetEdns0(512, false)
		resp := exchange(t, &Client{URL: base + "/dns-query", HTTPClient: hc}, m)
		if resp.Truncated || len(resp.Answer) != 100 {
			t.Fatalf("TC=%v with %d answers, want all 100 untruncated", resp.Truncated, len(resp.Answer))
		}
	}
}
