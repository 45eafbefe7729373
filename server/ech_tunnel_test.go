package server_test

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/porta443/porta/doh"
	"github.com/porta443/porta/internal/testenv"
	"github.com/porta443/porta/server"
	"github.com/porta443/porta/tunnel"
)

// loopbackResolver resolves every name to 127.0.0.1, for a Dialer that
// reaches the server by its real name.
type loopbackResolver struct{}

func (loopbackResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
}

// TestTunnelAndDoHOverECH: porta's Dialer, over HTTP/2 and HTTP/3, opens
// a tunnel and sends a DoH query on a connection whose ECH both ends
// accepted (the Dialer's and the server's ConnectionState().ECHAccepted),
// with the real name inside; and the first flight of each connection, as
// a proxy on loopback records it, carries only the public name: the real
// one appears nowhere in its bytes (for QUIC, nowhere in the ClientHello
// its Initial packets decrypt to). A Dialer without ECH, as a control,
// shows the real name there.
func TestTunnelAndDoHOverECH(t *testing.T) {
	up := testenv.NewUpstream(t, map[string][]string{"www.example.test": {"192.0.2.80"}})
	e := startECH(t, server.Config{Users: []string{"alice:alice-token"}, AllowPrivate: true, Upstreams: []string{up.URL()}})
	target := serveBytes(t, []byte("through the tunnel"))
	ff := testenv.NewFirstFlight(t, e.addr)
	_, ffPort, _ := net.SplitHostPort(ff.Addr)
	list := e.srv.ECHConfigList()

	dialer := func(transport string, withECH bool) *tunnel.Dialer {
		cfg := tunnel.DialerConfig{
			Servers:   []string{"https://alice:alice-token@" + realName + ":" + ffPort},
			RootCAs:   e.cert.Pool,
			Transport: transport,
			Resolver:  loopbackResolver{},
		}
		if withECH {
			cfg.ECH = &tunnel.ECH{ConfigList: func(context.Context, string, string) ([]byte, error) { return list, nil }}
		}
		d, err := tunnel.NewDialer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	// flights are the first flights so far: TCP streams for h2, the
	// ClientHellos decrypted from QUIC Initial packets for h3.
	flights := func(t *testing.T, transport string) [][]byte {
		if transport == "h2" {
			return ff.TCP()
		}
		var hellos [][]byte
		for _, datagrams := range ff.UDP() {
			_, raw, err := testenv.HelloFromQUIC(datagrams)
			if err != nil {
				t.Fatalf("a QUIC first flight: %v", err)
			}
			hellos = append(hellos, raw)
		}
		return hellos
	}
	hello := func(t *testing.T, transport string, flight []byte) testenv.Hello {
		read := testenv.ParseHello
		if transport == "h2" {
			read = func(b []byte) (testenv.Hello, error) { h, _, err := testenv.HelloFromTLS(b); return h, err }
		}
		h, err := read(flight)
		if err != nil {
			t.Fatalf("%s first flight: %v", transport, err)
		}
		return h
	}

	for _, transport := range []string{"h2", "h3"} {
		t.Run(transport, func(t *testing.T) {
			before := len(flights(t, transport))
			d := dialer(transport, true)
			if got := tunnelGet(t, d, target); got != "through the tunnel" {
				t.Fatalf("through the tunnel: %q", got)
			}
			if seen := e.lastSeen(t); !seen.ECHAccepted || seen.ServerName != realName {
				t.Errorf("the server saw the CONNECT with ECH %v, name %q", seen.ECHAccepted, seen.ServerName)
			}
			res, err := doh.NewResolver(doh.ResolverConfig{
				Upstreams:     []string{"https://" + realName + ":" + ffPort + "/dns-query"},
				HTTPTransport: d,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer res.Close()
			q := new(dns.Msg)
			q.SetQuestion("www.example.test.", dns.TypeA)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if a, err := res.Exchange(ctx, q); err != nil || len(a.Answer) != 1 {
				t.Fatalf("DoH through the Dialer: %v %v", a, err)
			}
			if seen := e.lastSeen(t); !seen.ECHAccepted || seen.ServerName != realName {
				t.Errorf("the server saw the DoH query with ECH %v, name %q", seen.ECHAccepted, seen.ServerName)
			}
			if !d.ECHAccepted() || d.Protocol() != transport {
				t.Errorf("the Dialer: ECH accepted %v over %q", d.ECHAccepted(), d.Protocol())
			}

			all := flights(t, transport)
			mine := all[before:]
			if len(mine) == 0 {
				t.Fatal("no first flight recorded")
			}
			for _, f := range mine {
				h := hello(t, transport, f)
				if h.ServerName != publicName || !h.Has(0xfe0d) {
					t.Errorf("the ClientHello names %q, ECH extension %v; want %s and ECH", h.ServerName, h.Has(0xfe0d), publicName)
				}
				if bytes.Contains(bytes.ToLower(f), []byte("hidden-origin")) {
					t.Errorf("the real name is in the first flight (%d bytes at %d)", len(f), bytes.Index(bytes.ToLower(f), []byte("hidden-origin")))
				}
			}

			// The control: without ECH the same capture shows the name.
			plain := dialer(transport, false)
			if got := tunnelGet(t, plain, target); got != "through the tunnel" {
				t.Fatalf("without ECH: %q", got)
			}
			control := flights(t, transport)[len(all):]
			if len(control) == 0 || !bytes.Contains(control[0], []byte(realName)) || hello(t, transport, control[0]).ServerName != realName {
				t.Errorf("without ECH the first flight does not show the real name: the capture is blind")
			}
		})
	}
}
