package tunnel

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// refused asserts that err is the server's refusal with this Proxy-Status
// error type.
func refused(t *testing.T, err error, status int, errType string) {
	t.Helper()
	var re *RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want a refusal %d %s", err, status, errType)
	}
	if re.Status != status || !strings.Contains(re.ProxyStatus, "error="+errType) || !strings.HasPrefix(re.ProxyStatus, "porta;") {
		t.Fatalf("refused with %d %q, want %d and error=%s", re.Status, re.ProxyStatus, status, errType)
	}
}

// tryTunnel opens a tunnel to target and makes it say something, so that
// a refusal surfaces (the Dialer reports it on first use).
func tryTunnel(t *testing.T, ts *testServer, mode, target string) error {
	t.Helper()
	c, err := tryDialVia(t, ts, mode, target, testUser, testToken)
	if err != nil {
		return err
	}
	defer c.Close()
	c.Write([]byte("x"))
	_, err = c.Read(make([]byte, 1))
	return err
}

// A Write on a tunnel the server refused fails with the refusal, not
// with the stream reset that follows it, on each of the Dialer's
// transports.
func TestDialerWriteSaysRefused(t *testing.T) {
	for _, mode := range dialerModes {
		t.Run(mode, func(t *testing.T) {
			d := newDialer(t, newTunnelServer(t, HandlerConfig{}), mode, testUser, testToken)
			c, err := d.DialContext(context.Background(), "tcp", "127.0.0.1:80")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for range 200 {
				if _, err = c.Write([]byte("x")); err != nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			refused(t, err, 403, "destination_ip_prohibited")
		})
	}
}

// TestEgressRefused: without AllowPrivate, loopback, private and the
// like are refused, whether named directly or reached through a name.
// The resolver is a map, and nothing prohibited is ever dialed.
func TestEgressRefused(t *testing.T) {
	res := mapResolver{
		"localhost":       {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")},
		"sneaky.example":  {netip.MustParseAddr("127.0.0.1")},
		"private.example": {netip.MustParseAddr("10.0.0.1")},
		"mapped.example":  {netip.MustParseAddr("::ffff:192.168.1.1")},
	}
	run(t, func(t *testing.T, mode string) {
		ts := newTunnelServer(t, HandlerConfig{Resolver: res})
		for _, target := range []string{
			"127.0.0.1:80", "localhost:80", "10.1.2.3:443", "[::1]:80", "sneaky.example:80",
			"private.example:22", "mapped.example:80", "[::ffff:127.0.0.1]:80", "169.254.169.254:80",
			"100.64.0.1:80", "172.16.0.1:80", "192.168.0.1:80", "[fe80::1]:80", "[fd00::1]:80",
			"0.0.0.0:80", "255.255.255.255:80", "224.0.0.1:80", "[ff02::1]:80",
		} {
			refused(t, tryTunnel(t, ts, mode, target), 403, "destination_ip_prohibited")
		}
		refused(t, tryTunnel(t, ts, mode, "nx.example:80"), 502, "dns_error")
		refused(t, tryTunnel(t, ts, mode, "bad.example:99999"), 400, "http_request_error")
	})
}

// TestEgressAllowPrivate: with AllowPrivate, loopback works, by name too,
// and a closed port is reported as connection_refused.
func TestEgressAllowPrivate(t *testing.T) {
	res := mapResolver{"target.example": {netip.MustParseAddr("127.0.0.1")}}
	run(t, func(t *testing.T, mode string) {
		ts := newTunnelServer(t, HandlerConfig{Resolver: res, AllowPrivate: true})
		target := echoTarget(t)
		if err := tryTunnel(t, ts, mode, "target.example:"+itoa(portOf(target))); err != nil {
			t.Fatalf("tunnel by name to an allowed loopback target: %v", err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := ln.Addr().String()
		ln.Close() // nothing listens here now
		refused(t, tryTunnel(t, ts, mode, closed), 502, "connection_refused")
	})
}

func TestEgressAllowed(t *testing.T) {
	own := netip.MustParseAddr("203.0.113.7")
	e := &egress{prefixes: prohibitedPrefixes(), own: func() []netip.Addr { return []netip.Addr{own} }}
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"1.1.1.1", true}, {"2606:4700::1111", true}, {"8.8.8.8", true},
		{"127.0.0.1", false}, {"127.255.0.9", false}, {"::1", false}, {"10.0.0.1", false},
		{"172.31.255.255", false}, {"192.168.1.1", false}, {"100.64.0.1", false}, {"100.127.255.254", false},
		{"169.254.1.1", false}, {"fe80::1", false}, {"fc00::1", false}, {"fdff::1", false},
		{"224.0.0.1", false}, {"ff05::1", false}, {"0.0.0.0", false}, {"0.1.2.3", false}, {"::", false},
		{"255.255.255.255", false}, {"::ffff:10.0.0.1", false}, {"::ffff:127.0.0.1", false},
		{"::ffff:1.1.1.1", true}, {"203.0.113.7", false}, {"::ffff:203.0.113.7", false},
		{"198.18.0.1", false}, {"240.0.0.1", false},
	} {
		if got := e.allowed(netip.MustParseAddr(tc.addr), netip.Addr{}); got != tc.ok {
			t.Errorf("allowed(%s) = %v, want %v", tc.addr, got, tc.ok)
		}
	}
	if e.allowed(netip.MustParseAddr("1.2.3.4"), netip.MustParseAddr("1.2.3.4")) {
		t.Error("the address the client connected to is allowed as a target")
	}
	e.allowPrivate = true
	if !e.allowed(netip.MustParseAddr("127.0.0.1"), netip.Addr{}) {
		t.Error("allowPrivate does not allow loopback")
	}
}

// TestEgressNeverDialsProhibited: the dial itself refuses; no connection
// attempt reaches a prohibited address (a listener there sees nothing).
func TestEgressNeverDialsProhibited(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	e := &egress{prefixes: prohibitedPrefixes(), dialTimeout: 1e9,
		resolver: mapResolver{"x.example": {netip.MustParseAddr("127.0.0.1")}}}
	for _, target := range []string{ln.Addr().String(), "x.example:" + itoa(portOf(ln.Addr().String()))} {
		if _, err := e.dial(context.Background(), target, netip.Addr{}); !errors.Is(err, ErrProhibited) {
			t.Fatalf("dial %s: %v, want ErrProhibited", target, err)
		}
	}
	ln.(*net.TCPListener).SetDeadline(timeNowPlus(50e6))
	if c, err := ln.Accept(); err == nil {
		c.Close()
		t.Fatal("a prohibited address was dialed")
	}
}
