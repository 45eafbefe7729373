package client_test

import (
	"bytes"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/porta443/porta/client"
	"github.com/porta443/porta/internal/relay/relaytest"
	"github.com/porta443/porta/internal/testenv"
)

// answerTarget is relaytest.AnswerTarget's address, parsed.
func answerTarget(t *testing.T, want int, answer []byte) netip.AddrPort {
	return netip.MustParseAddrPort(relaytest.AnswerTarget(t, want, answer))
}

// socksOnce goes through the SOCKS5 proxy at addr to target, sends up
// and returns what comes back.
func socksOnce(t *testing.T, addr string, target netip.AddrPort, up []byte) []byte {
	t.Helper()
	c, code := socksOpen(t, addr, target.Addr().String(), target.Port())
	defer c.Close()
	if code != 0 {
		t.Fatalf("SOCKS reply %d", code)
	}
	c.Write(up)
	down, _ := io.ReadAll(c)
	return down
}

// connectOnce goes through the HTTP proxy at addr with CONNECT.
func connectOnce(t *testing.T, addr string, target netip.AddrPort, up []byte) []byte {
	t.Helper()
	c, br, resp := connectOpen(t, addr, target.String(), "")
	defer c.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT: %s", resp.Status)
	}
	c.Write(up)
	down, _ := io.ReadAll(br)
	return down
}

// TestClientMetricsAfterTraffic scrapes the client's metrics after DNS
// queries and tunneled connections through both proxies, and checks that
// each counter moved by what was sent.
func TestClientMetricsAfterTraffic(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		recs, _ := client.ParseRecords([]string{"printer.lan=192.168.1.9"})
		s := newStackWith(t, func(s *stack, cfg *client.Config) { setTransport(cfg, transport); cfg.Records = recs })
		for _, name := range []string{"www.example.test", "www.example.test", "printer.lan"} {
			if out, err := s.dig(name, "A"); err != nil || !strings.Contains(out, "status: NOERROR") {
				t.Fatalf("dig %s: %v\n%s", name, err, out)
			}
		}
		up, answer := bytes.Repeat([]byte("u"), 1000), bytes.Repeat([]byte("d"), 3000)
		if down := socksOnce(t, s.socksAddr, answerTarget(t, len(up), answer), up); !bytes.Equal(down, answer) {
			t.Fatalf("SOCKS: %d bytes back", len(down))
		}
		if down := connectOnce(t, s.httpAddr, answerTarget(t, 10, []byte("twenty bytes, those.")), []byte("ten bytes.")); len(down) != 20 {
			t.Fatalf("CONNECT: %q back", down)
		}

		var m testenv.Scraped
		waitFor(t, "the streams to close", func() bool {
			m = testenv.Scrape(t, s.metrics)
			return m.Value("porta_tunnel_streams_active") == 0 && m.Value("porta_connections_active", "listener", "socks") == 0
		})
		for _, c := range []struct {
			name   string
			labels []string
			want   float64
		}{
			{"porta_requests_total", []string{"face", "dns"}, 3},
			{"porta_requests_total", []string{"face", "socks"}, 1},
			{"porta_requests_total", []string{"face", "http_proxy"}, 1},
			{"porta_dns_answers_total", []string{"source", "miss"}, 1},
			{"porta_dns_answers_total", []string{"source", "hit"}, 1},
			{"porta_tunnel_streams_total", nil, 2},
			{"porta_tunnel_bytes_total", []string{"direction", "up"}, 1010},
			{"porta_tunnel_bytes_total", []string{"direction", "down"}, 3020},
			{"porta_server_connections_active", []string{"transport", protoOf(transport)}, 1},
			{"porta_server_connect_failures_total", nil, 0},
			{"porta_connections_total", []string{"listener", "socks"}, 1},
		} {
			if got := m.Value(c.name, c.labels...); got != c.want {
				t.Errorf("%s%v = %v, want %v (families: %s)", c.name, c.labels, got, c.want, m.Names())
			}
		}
		if h := m.Histogram("porta_dns_upstream_rtt_seconds", "upstream", "https://"+s.serverAddr+"/dns-query"); h == nil || h.GetSampleCount() != 1 {
			t.Errorf("DoH RTT histogram: %v (upstreams %v)", h, m.LabelValues("porta_dns_upstream_rtt_seconds", "upstream"))
		}
	})
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
