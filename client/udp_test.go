package client_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/porta443/porta/client"
	"github.com/porta443/porta/client/socks5"
	"github.com/porta443/porta/internal/socksudp"
	"github.com/porta443/porta/internal/testenv"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// udpTransports are the client's transports that carry UDP: porta's own
// HTTP/2 client (capsules) and HTTP/3 (datagrams).
var udpTransports = []string{"h2", "h3"}

func eachUDPTransport(t *testing.T, f func(t *testing.T, transport string)) {
	for _, tr := range udpTransports {
		t.Run(tr, func(t *testing.T) { f(t, tr) })
	}
}

func newUDPStack(t *testing.T, transport string) *stack {
	return newStackWith(t, func(s *stack, cfg *client.Config) { setTransport(cfg, transport) })
}

func associate(t *testing.T, s *stack) *socksudp.PacketConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pc, err := socksudp.Associate(ctx, s.socksAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// authoritative answers A queries for udp.example.test on 127.0.0.1 UDP.
func authoritative(t *testing.T) *net.UDPAddr {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		if q.Question[0].Name == "udp.example.test." && q.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR("udp.example.test. 60 IN A 192.0.2.53")
			m.Answer = append(m.Answer, rr)
		} else {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().(*net.UDPAddr)
}

// A DNS query sent through the SOCKS5 proxy's UDP ASSOCIATE to a loopback
// authoritative server is answered.
func TestSOCKSUDPDNS(t *testing.T) {
	eachUDPTransport(t, func(t *testing.T, transport string) {
		auth := authoritative(t)
		pc := associate(t, newUDPStack(t, transport))
		q := new(dns.Msg)
		q.SetQuestion("udp.example.test.", dns.TypeA)
		wire, _ := q.Pack()
		if _, err := pc.WriteTo(wire, auth); err != nil {
			t.Fatal(err)
		}
		pc.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 4096)
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		if from.String() != auth.String() {
			t.Errorf("answer from %v; want %v", from, auth)
		}
		m := new(dns.Msg)
		if err := m.Unpack(buf[:n]); err != nil {
			t.Fatal(err)
		}
		if m.Id != q.Id || len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.53" {
			t.Errorf("answer %v", m)
		}
	})
}

// An HTTP/3 GET by quic-go's client, whose QUIC packets go through the
// SOCKS5 proxy's UDP ASSOCIATE, reaches a loopback HTTP/3 server.
func TestSOCKSUDPHTTP3(t *testing.T) {
	eachUDPTransport(t, func(t *testing.T, transport string) {
		cert := testenv.NewCert(t)
		upc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		h3 := &http3.Server{
			TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert.TLS}}),
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "over QUIC over the tunnel: "+r.Proto)
			}),
		}
		served := make(chan struct{})
		go func() { defer close(served); h3.Serve(upc) }()
		t.Cleanup(func() { h3.Close(); upc.Close(); <-served })

		pc := associate(t, newUDPStack(t, transport))
		qt := &quic.Transport{Conn: pc}
		t.Cleanup(func() { qt.Close() })
		target := upc.LocalAddr()
		rt := &http3.Transport{
			TLSClientConfig: cert.ClientTLS(http3.NextProtoH3),
			Dial: func(ctx context.Context, _ string, tlsConf *tls.Config, conf *quic.Config) (*quic.Conn, error) {
				return qt.Dial(ctx, target, tlsConf, conf)
			},
		}
		t.Cleanup(func() { rt.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+target.String()+"/", nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != "over QUIC over the tunnel: HTTP/3.0" {
			t.Errorf("body %q, %v", body, err)
		}
	})
}

// udpEcho answers every datagram on 127.0.0.1 with the same bytes.
func udpEcho(t *testing.T) *net.UDPAddr { return testenv.NewUDPEcho(t, "127.0.0.1").Addr }

// 10,000 numbered datagrams each way through SOCKS5 UDP and the tunnel to
// an echo server, at most 32 in flight: every one that comes back is
// whole and comes once. Loss, duplicates and reordering are reported.
func TestSOCKSUDPTenThousand(t *testing.T) {
	eachUDPTransport(t, func(t *testing.T, transport string) {
		echo := udpEcho(t)
		pc := associate(t, newUDPStack(t, transport))
		// The first datagram waits for its answer, so that the flow is
		// dialed before the rest come (the proxy holds only a few for a
		// flow being dialed).
		if _, err := pc.WriteTo([]byte("dial"), echo); err != nil {
			t.Fatal(err)
		}
		pc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := pc.ReadFrom(make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
		recv := func(b []byte) (int, error) {
			pc.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, _, err := pc.ReadFrom(b)
			return n, err
		}
		n := testenv.ExchangeNumbered(t, 10000, 32, 512, func(p []byte) error { _, err := pc.WriteTo(p, echo); return err }, recv)
		t.Logf("%s: %s", transport, n)
		n.Check(t)
	})
}

// Garbage, a datagram from another source and a fragment are dropped and
// counted; the association goes on.
func TestSOCKSUDPBadInput(t *testing.T) {
	eachUDPTransport(t, func(t *testing.T, transport string) {
		echo := udpEcho(t)
		s := newUDPStack(t, transport)
		pc := associate(t, s)
		roundTrip := func(what string) {
			t.Helper()
			if _, err := pc.WriteTo([]byte(what), echo); err != nil {
				t.Fatal(err)
			}
			pc.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 100)
			n, _, err := pc.ReadFrom(buf)
			if err != nil || string(buf[:n]) != what {
				t.Fatalf("%s: %q, %v", what, buf[:n], err)
			}
		}
		roundTrip("first")

		// From another socket of the client's host; then garbage and a
		// fragment from the association's own.
		relay := pc.Relay()
		raw, err := net.DialUDP("udp", nil, relay)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		raw.Write(append(socks5.AppendUDPHeader(nil, echo.IP.String(), uint16(echo.Port)), "from elsewhere"...))
		frag := socks5.AppendUDPHeader(nil, echo.IP.String(), uint16(echo.Port))
		frag[2] = 1
		for _, d := range [][]byte{{0xde, 0xad}, append(frag, "fragment"...)} {
			if _, err := pc.WriteRaw(d); err != nil {
				t.Fatal(err)
			}
		}
		roundTrip("still works")
		waitFor(t, "the drops counted", func() bool {
			m := testenv.Scrape(t, s.metrics)
			return m.Value("porta_udp_dropped_total", "reason", "wrong_source") == 1 &&
				m.Value("porta_udp_dropped_total", "reason", "bad_header") == 1 &&
				m.Value("porta_udp_dropped_total", "reason", "fragmented") == 1 &&
				m.Value("porta_udp_datagrams_total", "direction", "up") == 2 &&
				m.Value("porta_udp_datagrams_total", "direction", "down") == 2
		})
	})
}
