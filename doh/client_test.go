package doh

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go/http3"
)

func TestClient(t *testing.T) {
	up := newTestUpstream(t)
	r := newTestResolver(t, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}})
	srv := serveTest(t, &Handler{Resolver: r})
	for _, mode := range modes {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run(mode+"/"+method, func(t *testing.T) {
				hc, base := srv.client(t, mode)
				c := &Client{URL: base + "/dns-query", HTTPClient: hc, Method: method}
				for _, name := range []string{"www.example", "nx.example", "trunc.example"} {
					m := newQuery(name, dns.TypeA)
					m.Id = 4242
					resp := exchange(t, c, m)
					if name == "nx.example" && resp.Rcode != dns.RcodeNameError ||
						name != "nx.example" && len(resp.Answer) == 0 {
						t.Fatalf("%s: %v", name, resp)
					}
				}
			})
		}
	}
	t.Run("errors", func(t *testing.T) {
		hc, base := srv.client(t, "h2")
		for _, url := range []string{base + "/dns-query?dns=x", "https://127.0.0.1:1/dns-query"} {
			c := &Client{URL: url, HTTPClient: hc}
			if _, err := c.Exchange(t.Context(), newQuery("www.example", dns.TypeA)); err == nil {
				t.Errorf("Exchange with %s succeeded", url)
			}
		}
	})
}

func TestResolverOverTLSAndHTTPS(t *testing.T) {
	up := newTestUpstream(t)
	inner := newTestResolver(t, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}, CacheBytes: -1})
	srv := serveTest(t, &Handler{Resolver: inner})

	// A DNS-over-TLS server on loopback in front of the test upstream.
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{srv.Cert.TLS}})
	if err != nil {
		t.Fatal(err)
	}
	dot := &dns.Server{Listener: ln, Net: "tcp-tls", Handler: up}
	started := make(chan struct{})
	dot.NotifyStartedFunc = func() { close(started) }
	done := make(chan struct{})
	go func() { defer close(done); dot.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { dot.Shutdown(); <-done })

	for _, u := range []string{
		"tls://" + ln.Addr().String(),
		"https://" + srv.TCPAddr + "/dns-query",
		"https://" + srv.TCPAddr, // the path defaults to /dns-query
	} {
		t.Run(u, func(t *testing.T) {
			r := newTestResolver(t, ResolverConfig{Upstreams: []string{u}, TLSConfig: &tls.Config{RootCAs: srv.Cert.Pool}, CacheBytes: -1})
			for _, name := range []string{"a.example", "b.example", "trunc.example"} {
				resp := exchange(t, r, newQuery(name, dns.TypeA))
				if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) == 0 {
					t.Fatalf("%s: %v", name, resp)
				}
			}
		})
	}
	t.Run("untrusted", func(t *testing.T) {
		r := newTestResolver(t, ResolverConfig{Upstreams: []string{"tls://" + ln.Addr().String()}, Timeout: time.Second})
		if resp := exchange(t, r, newQuery("www.example", dns.TypeA)); resp.Rcode != dns.RcodeServerFailure {
			t.Fatalf("a DoT server with an untrusted certificate answered: %v", resp)
		}
	})
}

func TestLookupNetIP(t *testing.T) {
	up := newTestUpstream(t)
	r := newTestResolver(t, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}})
	v4, v6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	for _, tt := range []struct {
		network, host string
		want          []netip.Addr
		notFound      bool
	}{
		{"ip", "www.example", []netip.Addr{v4, v6}, false},
		{"ip4", "www.example", []netip.Addr{v4}, false},
		{"ip6", "www.example.", []netip.Addr{v6}, false},
		{"ip", "192.0.2.9", []netip.Addr{netip.MustParseAddr("192.0.2.9")}, false},
		{"ip", "[2001:db8::9]", []netip.Addr{netip.MustParseAddr("2001:db8::9")}, false},
		{"ip6", "192.0.2.9", nil, true},
		{"ip", "nx.example", nil, true},
		{"ip4", "nodata.example", nil, true},
		// RFC 6761: localhost is loopback, never asked upstream.
		{"ip", "localhost", []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}, false},
		{"ip4", "LocalHost.", []netip.Addr{netip.MustParseAddr("127.0.0.1")}, false},
		{"ip6", "app.localhost", []netip.Addr{netip.IPv6Loopback()}, false},
	} {
		t.Run(tt.network+"/"+tt.host, func(t *testing.T) {
			got, err := r.LookupNetIP(t.Context(), tt.network, tt.host)
			if tt.notFound {
				var de *net.DNSError
				if !errors.As(err, &de) || !de.IsNotFound {
					t.Fatalf("got %v, %v; want a not-found *net.DNSError", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	if n := up.queries.Load(); n != 0 {
		r.LookupNetIP(t.Context(), "ip", "localhost")
		if up.queries.Load() != n {
			t.Fatal("localhost was asked upstream")
		}
	}
	if _, err := r.LookupNetIP(t.Context(), "tcp", "www.example"); err == nil || !strings.Contains(err.Error(), "network") {
		t.Fatalf("network tcp: %v", err)
	}
	// The same lookup again comes from the cache.
	before := up.queries.Load()
	if _, err := r.LookupNetIP(t.Context(), "ip", "www.example"); err != nil {
		t.Fatal(err)
	}
	if up.queries.Load() != before {
		t.Fatal("a repeated lookup went upstream")
	}
}

// TestHandlerServesGETIn0RTT resumes an HTTP/3 session and sends a GET in
// 0-RTT data: the handler sees the handshake incomplete and still answers.
func TestHandlerServesGETIn0RTT(t *testing.T) {
	up := newTestUpstream(t)
	r := newTestResolver(t, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}})
	early := make(chan bool, 10)
	h := &Handler{Resolver: r}
	srv := serveTest(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		early <- req.TLS != nil && !req.TLS.HandshakeComplete
		h.ServeHTTP(w, req)
	}))
	// On loopback the handshake can complete before the server reads the
	// request sent in 0-RTT (about 1 run in 20): try a few times, and fail
	// only if early data was never seen.
	for attempt := range 5 {
		if getTwiceResumed(t, srv, early) {
			return
		}
		t.Logf("attempt %d: the handshake completed before the request was handled", attempt+1)
	}
	t.Fatal("no request was ever served in 0-RTT")
}

// getTwiceResumed sends the same GET on two HTTP/3 connections, the second
// resuming the first's session in 0-RTT, and reports whether the handler
// saw the second before the handshake completed.
func getTwiceResumed(t *testing.T, srv *testServer, early chan bool) bool {
	t.Helper()
	tlsConf := srv.Cert.ClientTLS("h3")
	tickets := &notifyingSessionCache{ClientSessionCache: tls.NewLRUClientSessionCache(4), put: make(chan struct{}, 8)}
	tlsConf.ClientSessionCache = tickets
	q := b64(packQuery(t, newQuery("www.example", dns.TypeA)))
	sawEarly := false
	for i := range 2 {
		tr := &http3.Transport{TLSClientConfig: tlsConf}
		req, err := http.NewRequestWithContext(t.Context(), http3.MethodGet0RTT, "https://"+srv.UDPAddr+"/dns-query?dns="+q, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		res, err := tr.RoundTrip(req.WithContext(ctx))
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		res.Body.Close()
		cancel()
		if i == 0 {
			// The session ticket comes after the handshake: wait for it, or
			// the second connection cannot resume and send 0-RTT.
			select {
			case <-tickets.put:
			case <-time.After(10 * time.Second):
				t.Fatal("no session ticket from the server")
			}
		}
		tr.Close()
		if res.StatusCode != 200 {
			t.Fatalf("GET %d: status %d", i, res.StatusCode)
		}
		sawEarly = <-early
	}
	return sawEarly
}

type countingTransport struct {
	http.RoundTripper
	n atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.RoundTripper.RoundTrip(r)
}

// TestResolverHTTPTransport checks that https:// upstreams ride the given
// transport (as porta's client does, over its tunnel) and that Close
// leaves that transport alone.
func TestResolverHTTPTransport(t *testing.T) {
	up := newTestUpstream(t)
	inner := newTestResolver(t, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}})
	srv := serveTest(t, &Handler{Resolver: inner})
	hc, base := srv.client(t, "h2")
	rt := &countingTransport{RoundTripper: hc.Transport}
	r, err := NewResolver(ResolverConfig{Upstreams: []string{base + "/dns-query"}, HTTPTransport: rt})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a.example", "b.example"} {
		if resp := exchange(t, r, newQuery(name, dns.TypeA)); len(resp.Answer) != 1 {
			t.Fatalf("%s: %v", name, resp)
		}
	}
	r.Close()
	if n := rt.n.Load(); n != 2 {
		t.Fatalf("the transport carried %d requests, want 2", n)
	}
	// Still usable by its owner after the resolver closed.
	c := &Client{URL: base + "/dns-query", HTTPClient: &http.Client{Transport: rt}}
	exchange(t, c, newQuery("c.example", dns.TypeA))
}

// notifyingSessionCache tells when a session ticket is stored.
type notifyingSessionCache struct {
	tls.ClientSessionCache
	put chan struct{}
}

func (c *notifyingSessionCache) Put(key string, cs *tls.ClientSessionState) {
	c.ClientSessionCache.Put(key, cs)
	if cs != nil {
		select {
		case c.put <- struct{}{}:
		default:
		}
	}
}
