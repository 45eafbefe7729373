package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/porta443/porta/internal/relay/relaytest"
	"github.com/porta443/porta/internal/testenv"
	"github.com/porta443/porta/server"
)

// startWithMetrics is start, with the metrics listener open; it returns
// the metrics address too.
func startWithMetrics(t *testing.T, cfg server.Config) (*running, string) {
	t.Helper()
	srv, ls, cert := prepare(t, cfg, "")
	t.Cleanup(func() { srv.Close() })
	m, err := server.ListenMetrics("127.0.0.1:0", ls.TCP)
	if err != nil {
		ls.Close()
		t.Fatal(err)
	}
	ls.Metrics = m
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ls) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return &running{srv: srv, cert: cert, addr: ls.TCP.Addr().String()}, m.Addr().String()
}

// connectOnce opens a TLS connection to addr, CONNECTs to target over
// HTTP/1.1 with auth, sends up and reads what the target answers.
func connectOnce(t *testing.T, r *running, auth, target string, up []byte) []byte {
	t.Helper()
	c, err := tls.Dial("tcp", r.addr, r.cert.ClientTLS("http/1.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\nProxy-Authorization: "+auth+"\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	c.Write(up)
	down, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	return down
}

func dohQuery(name string) string {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	m.Id = 0
	b, _ := m.Pack()
	return "/dns-query?dns=" + base64.RawURLEncoding.EncodeToString(b)
}

// TestMetricsAfterTraffic scrapes the server's metrics after traffic of
// every kind and checks that each counter moved by what was sent.
func TestMetricsAfterTraffic(t *testing.T) {
	eachHTTP2(t, func(t *testing.T) {
		r, maddr := startWithMetrics(t, server.Config{
			Users:        []string{"alice:s3cret-token", "bob:other-token"},
			AllowPrivate: true,
		})
		before := testenv.Scrape(t, maddr)
		if v := before.Value("porta_requests_total", "face", "site"); v != 0 {
			t.Fatalf("site requests before any: %v (families: %s)", v, before.Names())
		}
		clients := r.clients(t)
		// By the name the clients send as SNI: a request whose host is
		// another is proxy-shaped on HTTP/2 and HTTP/3.
		url := func(path string) string { return "https://localhost:" + portOf(r.addr) + path }
		// Site: 3 over HTTP/2 (one connection), 1 over HTTP/3.
		for range 3 {
			get(t, clients["h2"], newRequest(t, http.MethodGet, url("/")))
		}
		get(t, clients["h3"], newRequest(t, http.MethodGet, url("/")))
		// DoH over the same HTTP/2 connection: a miss, a hit, a 400.
		for _, path := range []string{dohQuery("a.example"), dohQuery("a.example"), "/dns-query?dns=!!"} {
			req := newRequest(t, http.MethodGet, url(path))
			req.Header.Set("Accept", "application/dns-message")
			get(t, clients["h2"], req)
		}
		// A probe: CONNECT with a wrong token gets the website's answer.
		if down := connectOnce(t, r, "Basic "+base64.StdEncoding.EncodeToString([]byte("alice:wrong")), "127.0.0.1:1", nil); down != nil {
			t.Fatal("the probe was tunneled")
		}
		// A tunnel: exactly 1000 bytes up and 3000 down, for alice.
		up, answer := bytes.Repeat([]byte("u"), 1000), bytes.Repeat([]byte("d"), 3000)
		target := relaytest.AnswerTarget(t, len(up), answer)
		auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3cret-token"))
		if down := connectOnce(t, r, auth, target, up); !bytes.Equal(down, answer) {
			t.Fatalf("tunnel: %d bytes back, want %d", len(down), len(answer))
		}
		// A TCP connection that is not TLS, and one that says nothing.
		for _, greeting := range []string{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", ""} {
			c, err := net.Dial("tcp", r.addr)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, greeting)
			if greeting == "" {
				c.Close()
				continue
			}
			io.ReadAll(c) // the server answers 400 and closes
			c.Close()
		}

		var m testenv.Scraped
		// Connections close on the server a moment after the client
		// sees them end: wait for those counts, then check all.
		waitUntil(t, "connections to close", func() bool {
			m = testenv.Scrape(t, maddr)
			return m.Value("porta_tls_handshake_errors_total") == 2 &&
				m.Value("porta_tunnel_streams_active", "user", "alice") == 0 &&
				m.Value("porta_connections_active", "transport", "tcp") == 1 // the HTTP/2 client's
		})
		checks := []struct {
			name   string
			labels []string
			want   float64
		}{
			{"porta_requests_total", []string{"face", "site"}, 4},
			{"porta_requests_total", []string{"face", "doh"}, 3},
			{"porta_requests_total", []string{"face", "probe"}, 1},
			{"porta_requests_total", []string{"face", "tunnel"}, 1},
			{"porta_doh_responses_total", []string{"code", "200"}, 2},
			{"porta_doh_responses_total", []string{"code", "400"}, 1},
			{"porta_dns_answers_total", []string{"source", "hit"}, 1},
			{"porta_dns_answers_total", []string{"source", "miss"}, 1},
			{"porta_dns_cache_hit_ratio", nil, 0.5},
			{"porta_tunnel_streams_total", []string{"user", "alice"}, 1},
			{"porta_tunnel_streams_total", []string{"user", "bob"}, 0},
			{"porta_tunnel_bytes_total", []string{"user", "alice", "direction", "up"}, 1000},
			{"porta_tunnel_bytes_total", []string{"user", "alice", "direction", "down"}, 3000},
			{"porta_connections_total", []string{"transport", "tcp"}, 5},
			{"porta_connections_total", []string{"transport", "quic"}, 1},
			{"porta_tls_handshake_errors_total", nil, 2},
		}
		for _, c := range checks {
			if got := m.Value(c.name, c.labels...); got != c.want {
				t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
			}
		}
		if h := m.Histogram("porta_dns_upstream_rtt_seconds"); h == nil || h.GetSampleCount() != 1 || h.GetSampleSum() <= 0 {
			t.Errorf("upstream RTT histogram: %v", h)
		}
		// No queried name, target or query in any label.
		for name, fam := range m {
			for _, s := range fam.Metric {
				for _, lp := range s.Label {
					if v := lp.GetValue(); strings.Contains(v, "a.example") || strings.Contains(v, target) || strings.Contains(v, "?") {
						t.Errorf("%s has label %s=%q", name, lp.GetName(), v)
					}
				}
			}
		}
	})
}

// waitUntil polls cond until it holds or 10 s pass.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMetricsListener: a host-less --metrics listens on loopback, and
// never on the port the server serves the public on.
func TestMetricsListener(t *testing.T) {
	ls, err := server.Listen("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	if ln, err := server.ListenMetrics(":"+portOf(ls.TCP.Addr().String()), ls.TCP); err == nil {
		ln.Close()
		t.Error("metrics on the public port")
	} else if le, ok := errors.AsType[*server.ListenError](err); !ok || le.Listener != "Metrics" {
		t.Errorf("error %q is not a ListenError for Listeners.Metrics", err)
	}
	ln, err := server.ListenMetrics(":0", ls.TCP)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if a := ln.Addr().(*net.TCPAddr); !a.IP.IsLoopback() {
		t.Errorf("host-less --metrics listens on %v", a)
	}
}
