package client_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/porta443/porta/client"
	"github.com/porta443/porta/internal/ech"
	"github.com/porta443/porta/internal/relay/relaytest"
	"github.com/porta443/porta/internal/testenv"
	"github.com/porta443/porta/server"
)

// echPublicName is the public name of the ECH tests' server, whose real
// name is serverName.
const echPublicName = "cdn.public.test"

// echStack is a stack whose server has ECH on, whose client reaches it by
// its name through a FirstFlight proxy, with the bootstrap resolver (the
// server's loopback upstream) knowing the name, and what the client logs.
type echStack struct {
	*stack
	ff   *testenv.FirstFlight
	logs *testenv.Logs
}

// newECHStack starts an echStack: the server has ECH unless serverECH is
// false; the client has cfg's ECH settings and transport, and publish
// says whether the bootstrap resolver has the server's HTTPS record.
func newECHStack(t *testing.T, serverECH, publish bool, cfg client.Config) *echStack {
	t.Helper()
	e := &echStack{}
	var log *slog.Logger
	e.logs, log = testenv.NewLogs(slog.LevelInfo)
	s := &stack{t: t, cert: testenv.NewCertFor(t, serverName, echPublicName, "127.0.0.1")}
	if serverECH {
		s.serverConfig = server.Config{ECHPublicName: echPublicName, StateDir: t.TempDir()}
	}
	e.stack = startStack(s, func(s *stack, c *client.Config) {
		e.ff = testenv.NewFirstFlight(t, s.serverAddr)
		_, port, _ := net.SplitHostPort(e.ff.Addr)
		if publish {
			s.upstream.Add(&dns.HTTPS{SVCB: dns.SVCB{
				Hdr:      dns.RR_Header{Name: "_" + port + "._https." + serverName + ".", Rrtype: dns.TypeHTTPS, Class: dns.ClassINET, Ttl: 60},
				Priority: 1,
				Target:   ".",
				Value:    []dns.SVCBKeyValue{&dns.SVCBAlpn{Alpn: []string{"h3", "h2"}}, &dns.SVCBECHConfig{ECH: s.server.ECHConfigList()}},
			}})
		}
		c.Servers = []string{"https://alice:alice-token@" + serverName + ":" + port}
		c.Bootstrap = []string{s.upstream.Addr}
		c.Transport, c.StdHTTP2, c.ECH, c.ECHFallback, c.Logger = cfg.Transport, cfg.StdHTTP2, cfg.ECH, cfg.ECHFallback, log
	})
	return e
}

// works reports whether a tunnel and a DNS query through the client work.
func (e *echStack) works(t *testing.T) bool {
	t.Helper()
	target, sum := relaytest.FileServer(t, 1<<16)
	got, _, err := relaytest.Curl(t, "--max-time", "10", "--socks5-hostname", e.socksAddr, "http://"+target+"/file")
	out, _ := e.dig("+short", "www.example.test")
	return err == nil && got == sum && strings.TrimSpace(out) == "192.0.2.80"
}

// firstFlights are the ClientHellos the client sent for transport, and
// the bytes that carried them (for QUIC, the decrypted ClientHello).
func (e *echStack) firstFlights(t *testing.T, transport string) ([]testenv.Hello, [][]byte) {
	t.Helper()
	var hellos []testenv.Hello
	var raw [][]byte
	add := func(h testenv.Hello, b []byte, err error) {
		if err != nil {
			t.Fatal(err)
		}
		hellos, raw = append(hellos, h), append(raw, b)
	}
	if protoOf(transport) == "h2" {
		for _, f := range e.ff.TCP() {
			h, _, err := testenv.HelloFromTLS(f)
			add(h, f, err)
		}
	} else {
		for _, datagrams := range e.ff.UDP() {
			add(testenv.HelloFromQUIC(datagrams))
		}
	}
	return hellos, raw
}

func (e *echStack) logged(msg string) bool {
	for _, l := range e.logs.Lines() {
		if strings.Contains(l, msg) {
			return true
		}
	}
	return false
}

// TestECHAuto: by default the client looks the server's HTTPS record up
// through the bootstrap resolver and connects with its ECH config, over
// HTTP/2 and HTTP/3: tunnels and DNS work, the log says ECH was
// accepted, and every ClientHello it sent names only the public name,
// with ECH, the server's own name nowhere in it. With --ech off, the
// same capture shows the name.
func TestECHAuto(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		var cfg client.Config
		setTransport(&cfg, transport)
		e := newECHStack(t, true, true, cfg)
		if !e.works(t) || !e.logged("encrypted client hello accepted") {
			t.Fatalf("with ECH: %q", e.logs.Lines())
		}
		hellos, raw := e.firstFlights(t, transport)
		if len(hellos) == 0 {
			t.Fatal("no ClientHello recorded")
		}
		for i, h := range hellos {
			if h.ServerName != echPublicName || !h.Has(0xfe0d) || bytes.Contains(bytes.ToLower(raw[i]), []byte("porta-server")) {
				t.Errorf("ClientHello %d: name %q, ECH %v, the real name in it %v", i, h.ServerName, h.Has(0xfe0d), bytes.Contains(raw[i], []byte("porta-server")))
			}
		}

		cfg.ECH = "off"
		off := newECHStack(t, true, true, cfg)
		if !off.works(t) {
			t.Fatal("with --ech off")
		}
		hellos, raw = off.firstFlights(t, transport)
		if len(hellos) == 0 || hellos[0].ServerName != serverName || !bytes.Contains(raw[0], []byte(serverName)) {
			t.Errorf("with --ech off the ClientHello does not show %s: the capture is blind", serverName)
		}
	})
}

// TestECHConfigGiven: --ech CONFIG is used as it is; a config of another
// key gets the server's retry configs once and then works; with no ECH
// at the server the client does not connect, and says why, unless
// --ech-fallback lets it, which it logs as a warning.
func TestECHConfigGiven(t *testing.T) {
	stranger, err := ech.NewRing(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	strange := base64.StdEncoding.EncodeToString(stranger.ConfigList(echPublicName))

	e := newECHStack(t, true, false, client.Config{Transport: "h2", ECH: strange})
	if !e.works(t) || !e.logged("replaced its ECH config") || !e.logged("encrypted client hello accepted") {
		t.Errorf("another key's config: %q", e.logs.Lines())
	}

	refused := newECHStack(t, false, false, client.Config{Transport: "h2", ECH: strange})
	if refused.works(t) || !refused.logged("not connecting without it") {
		t.Errorf("a server without ECH was reached, or the log does not say why: %q", refused.logs.Lines())
	}
	if hellos, raw := refused.firstFlights(t, "h2"); len(hellos) == 0 || bytes.Contains(bytes.Join(raw, nil), []byte(serverName)) {
		t.Errorf("refusing, the client still sent its server's name (%d hellos)", len(hellos))
	}

	fallback := newECHStack(t, false, false, client.Config{Transport: "h2", ECH: strange, ECHFallback: true})
	if !fallback.works(t) || !fallback.logged(`level=WARN msg="the server rejected ECH; connecting without it`) {
		t.Errorf("--ech-fallback: %q", fallback.logs.Lines())
	}

	plain := newECHStack(t, true, false, client.Config{Transport: "h2"})
	if !plain.works(t) || !plain.logged("no ECH config for the server") {
		t.Errorf("auto without a record: %q", plain.logs.Lines())
	}
}

// TestECHConfigErrors: --ech takes auto, off or a usable config list in
// base64; anything else is refused naming Config.ECH.
func TestECHConfigErrors(t *testing.T) {
	k, _ := ech.NewKey(1, time.Now())
	bad := k.Config("localhost") // one label: crypto/tls would not use it
	for _, value := range []string{"on", "!!!", base64.StdEncoding.EncodeToString([]byte{0, 3, 1, 2, 3}), base64.StdEncoding.EncodeToString(ech.List(bad.Marshal())), strings.Repeat("A", 90000)} {
		_, err := client.New(client.Config{Servers: []string{"https://a:b@example.test"}, ECH: value})
		if ce, ok := errors.AsType[*client.ConfigError](err); !ok || ce.Field != "ECH" {
			t.Errorf("ECH %.20q: %v, want a ConfigError for ECH", value, err)
		}
	}
}
