package socks5

import (
	"io"
	"net"
	"net/netip"
	"strconv"
	"testing"
)

var success = []byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0}

func failure(code byte) []byte { return []byte{5, code, 0, 1, 0, 0, 0, 0, 0, 0} }

// TestConnectAddressTypes: every ATYP reaches Dial as the address the
// client named, a domain name unresolved, and the connection then relays.
func TestConnectAddressTypes(t *testing.T) {
	rec := &recordingDial{Target: echoTarget(t)}
	addr := startServer(t, Config{Dial: rec.Dial})
	for _, tc := range []struct {
		name string
		atyp byte
		addr []byte
		want string
	}{
		{"ipv4", atypIPv4, []byte{192, 0, 2, 7}, "192.0.2.7:8080"},
		{"ipv6", atypIPv6, netip.MustParseAddr("2001:db8::1").AsSlice(), "[2001:db8::1]:8080"},
		{"domain", atypDomain, []byte("files.porta.test"), "files.porta.test:8080"},
		{"domain with an address", atypDomain, []byte("192.0.2.8"), "192.0.2.8:8080"},
		{"ipv4-mapped ipv6", atypIPv6, netip.MustParseAddr("::ffff:192.0.2.9").AsSlice(), "[::ffff:192.0.2.9]:8080"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialSOCKS(t, addr)
			c.Write(connectMsg(tc.atyp, tc.addr, 8080))
			got := make([]byte, 2+len(success))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatal(err)
			}
			mustEqual(t, "method and reply", got, append([]byte{5, 0}, success...))
			if a := rec.Last(); a != tc.want {
				t.Fatalf("Dial got %q, want %q", a, tc.want)
			}
			c.Write([]byte("ping"))
			c.CloseWrite()
			mustEqual(t, "echo", readAll(t, c), []byte("ping"))
		})
	}
}

// TestMalformed: each bad exchange gets the reply the RFC calls for (or
// none) and the connection is closed.
func TestMalformed(t *testing.T) {
	rec := &recordingDial{Target: echoTarget(t)}
	open := startServer(t, Config{Dial: rec.Dial})
	authed := startServer(t, Config{Dial: rec.Dial, Users: map[string]string{"alice": "s3cret"}})
	req := func(cmd, atyp byte, addr ...byte) []byte {
		return append([]byte{5, cmd, 0, atyp}, addr...)
	}
	userPass := func(u, p string) []byte {
		b := append([]byte{1, byte(len(u))}, u...)
		return append(append(b, byte(len(p))), p...)
	}
	greet := []byte{5, 1, 0}
	ok := []byte{5, 0}
	for _, tc := range []struct {
		name   string
		server string
		send   []byte
		want   []byte // everything the server sends before it closes
	}{
		{"socks4 greeting", open, []byte{4, 1, 0, 80, 127, 0, 0, 1, 0}, nil},
		{"http on the socks port", open, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), nil},
		{"no methods", open, []byte{5, 0}, []byte{5, 0xFF}},
		{"only user/pass offered without auth", open, []byte{5, 1, 2}, []byte{5, 0xFF}},
		{"only no-auth offered with auth", authed, []byte{5, 2, 0, 1}, []byte{5, 0xFF}},
		{"truncated greeting", open, []byte{5, 3, 0}, nil},
		{"empty", open, nil, nil},
		{"truncated request", open, cat(greet, []byte{5, 1, 0, 1, 127, 0}), ok},
		{"truncated domain", open, cat(greet, req(1, 3, 10, 'a', 'b')), ok},
		{"request version 4", open, cat(greet, []byte{4, 1, 0, 1, 127, 0, 0, 1, 0, 80}), cat(ok, failure(1))},
		{"bind", open, cat(greet, req(2, 1, 127, 0, 0, 1, 0, 80)), cat(ok, failure(7))},
		{"udp associate", open, cat(greet, req(3, 1, 0, 0, 0, 0, 0, 0)), cat(ok, failure(7))},
		{"unknown command", open, cat(greet, req(9, 1, 127, 0, 0, 1, 0, 80)), cat(ok, failure(7))},
		{"unknown address type", open, cat(greet, req(1, 5, 127, 0, 0, 1, 0, 80)), cat(ok, failure(8))},
		{"empty domain", open, cat(greet, req(1, 3, 0, 0, 80)), cat(ok, failure(1))},
		{"domain with a colon", open, cat(greet, req(1, 3, 3, 'a', ':', 'b', 0, 80)), cat(ok, failure(1))},
		{"domain with a zone", open, cat(greet, req(1, 3, 9, 'f', 'e', '8', '0', ':', ':', '1', '%', 'x', 0, 80)), cat(ok, failure(1))},
		{"wrong password", authed, cat([]byte{5, 1, 2}, userPass("alice", "guess")), []byte{5, 2, 1, 1}},
		{"unknown user", authed, cat([]byte{5, 1, 2}, userPass("mallory", "s3cret")), []byte{5, 2, 1, 1}},
		{"empty credentials", authed, cat([]byte{5, 1, 2}, userPass("", "")), []byte{5, 2, 1, 1}},
		{"auth version 5", authed, cat([]byte{5, 1, 2}, []byte{5, 5}, []byte("alice"), []byte{6}, []byte("s3cret")), []byte{5, 2, 1, 1}},
		{"truncated auth", authed, cat([]byte{5, 1, 2}, []byte{1, 5, 'a', 'l'}), []byte{5, 2}},
		{"garbage after auth", authed, cat([]byte{5, 1, 2}, userPass("alice", "s3cret"), []byte{0xde, 0xad, 0xbe, 0xef}), cat([]byte{5, 2, 1, 0}, failure(1))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := rec.Count()
			c := dialSOCKS(t, tc.server)
			c.Write(tc.send)
			c.CloseWrite()
			mustEqual(t, "server sent", readAll(t, c), tc.want)
			if rec.Count() != before {
				t.Fatalf("Dial was called for %q", rec.Last())
			}
		})
	}
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// TestAuthSuccess: the right credentials lead to a working CONNECT.
func TestAuthSuccess(t *testing.T) {
	echo := echoTarget(t)
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"users", Config{Dial: dialDirect, Users: map[string]string{"alice": "s3cret", "bob": "other"}}},
		{"authenticate", Config{Dial: dialDirect, Authenticate: func(u, p string) bool { return u == "alice" && p == "s3cret" }}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startServer(t, tc.cfg)
			c := dialSOCKS(t, addr)
			host, port, _ := net.SplitHostPort(echo)
			p, _ := strconv.Atoi(port)
			msg := cat([]byte{5, 2, 0, 2, 1, 5}, []byte("alice"), []byte{6}, []byte("s3cret"),
				[]byte{5, 1, 0, 1}, netip.MustParseAddr(host).AsSlice(), []byte{byte(p >> 8), byte(p)}, []byte("hi"))
			c.Write(msg) // everything at once, data included: nothing may be lost
			c.CloseWrite()
			mustEqual(t, "server sent", readAll(t, c), cat([]byte{5, 2, 1, 0}, success, []byte("hi")))
		})
	}
}

func TestNewValidates(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{Dial: dialDirect, Users: map[string]string{"a": "b"}, Authenticate: func(string, string) bool { return true }},
		{Dial: dialDirect, HandshakeTimeout: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
