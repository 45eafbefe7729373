package socks5

import (
	"net"
	"testing"

	"github.com/porta443/porta/internal/relay/relaytest"
)

const fileSize = 30 << 20

// TestCurl downloads a 30 MB file through the server with curl: by name
// (resolved by Dial, not locally), by address, and with a password.
func TestCurl(t *testing.T) {
	target, sum := relaytest.FileServer(t, fileSize)
	_, port, _ := net.SplitHostPort(target)
	users := map[string]string{"alice": "s3cret"}
	for _, tc := range []struct {
		name     string
		users    map[string]string
		args     func(proxy string) []string
		wantDial string
	}{
		{"socks5-hostname", nil, func(p string) []string {
			return []string{"--socks5-hostname", p, "http://files.porta.test:" + port + "/file"}
		}, "files.porta.test:" + port},
		{"socks5", nil, func(p string) []string {
			return []string{"--socks5", p, "http://" + target + "/file"}
		}, target},
		{"proxy-user", users, func(p string) []string {
			return []string{"--proxy-user", "alice:s3cret", "--socks5-hostname", p, "http://files.porta.test:" + port + "/file"}
		}, "files.porta.test:" + port},
		{"socks5h URL with credentials", users, func(p string) []string {
			return []string{"-x", "socks5h://alice:s3cret@" + p, "http://files.porta.test:" + port + "/file"}
		}, "files.porta.test:" + port},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recordingDial{Target: target}
			proxy := startServer(t, Config{Dial: rec.Dial, Users: tc.users})
			got, _, err := relaytest.Curl(t, tc.args(proxy)...)
			if err != nil {
				t.Fatal(err)
			}
			if got != sum {
				t.Fatalf("SHA-256 %x, want %x", got, sum)
			}
			if a := rec.Last(); a != tc.wantDial {
				t.Fatalf("Dial got %q, want %q", a, tc.wantDial)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		rec := &recordingDial{Target: target}
		proxy := startServer(t, Config{Dial: rec.Dial, Users: users})
		if _, _, err := relaytest.Curl(t, "--proxy-user", "alice:guess", "--socks5-hostname", proxy, "http://files.porta.test:"+port+"/file"); err == nil {
			t.Fatal("curl succeeded with a wrong password")
		}
		if n := rec.Count(); n != 0 {
			t.Fatalf("Dial called %d times", n)
		}
	})
}
