package httpproxy

import (
	"net"
	"net/netip"
	"strconv"
	"testing"
)

func FuzzTargetAddress(f *testing.F) {
	for _, s := range []string{"example.com:443", "[::1]:80", "127.0.0.1:8080", "x.test", "[fe80::1%eth0]:80", "a b:1", ":80", "x:0", "[::1]", "1.2.3.4:65536"} {
		f.Add(s, "")
		f.Add(s, "80")
	}
	f.Fuzz(func(t *testing.T, authority, defaultPort string) {
		addr, err := targetAddress(authority, defaultPort)
		if err != nil {
			return
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("%q → %q: %v", authority, addr, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			t.Fatalf("%q → port %q", authority, port)
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			if ip.Zone() != "" {
				t.Fatalf("%q → zoned %q", authority, host)
			}
		} else if !validName(host) {
			t.Fatalf("%q → host %q", authority, host)
		}
		if again, err := targetAddress(addr, ""); err != nil || again != addr {
			t.Fatalf("%q → %q → %q, %v", authority, addr, again, err)
		}
	})
}
