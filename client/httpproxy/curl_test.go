package httpproxy

import (
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/porta443/porta/internal/relay/relaytest"
)

const fileSize = 30 << 20

// TestCurl downloads a 30 MB file through the proxy with curl, as an
// absolute-form request and through CONNECT, by a name that only Dial
// knows, and uploads one.
func TestCurl(t *testing.T) {
	target, sum := relaytest.FileServer(t, fileSize)
	_, port, _ := net.SplitHostPort(target)
	url := "http://files.porta.test:" + port + "/file"
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"absolute-form", nil},
		{"connect", []string{"-p"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recordingDial{Target: target}
			proxy := startServer(t, Config{Dial: rec.Dial})
			got, _, err := relaytest.Curl(t, append(tc.args, "-x", "http://"+proxy, url)...)
			if err != nil {
				t.Fatal(err)
			}
			if got != sum {
				t.Fatalf("SHA-256 %x, want %x", got, sum)
			}
			if a := rec.Last(); a != "files.porta.test:"+port {
				t.Fatalf("Dial got %q", a)
			}
		})
	}
	t.Run("upload", func(t *testing.T) {
		body, want := relaytest.Payload(t, 8<<20)
		file := filepath.Join(t.TempDir(), "body")
		if err := os.WriteFile(file, body, 0o600); err != nil {
			t.Fatal(err)
		}
		proxy := startServer(t, Config{Dial: (&recordingDial{Target: target}).Dial})
		_, out, err := relaytest.Curl(t, "-x", "http://"+proxy, "--data-binary", "@"+file, "http://files.porta.test:"+port+"/sum")
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != hex.EncodeToString(want[:]) {
			t.Fatalf("server saw %s, want %x", out, want)
		}
	})
	t.Run("pac", func(t *testing.T) {
		proxy := startServer(t, Config{Dial: relaytest.DialDirect})
		_, out, err := relaytest.Curl(t, "-i", "http://"+proxy+"/proxy.pac")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Content-Type: application/x-ns-proxy-autoconfig", "function FindProxyForURL", `return "PROXY ` + proxy + `";`} {
			if !strings.Contains(string(out), want) {
				t.Errorf("PAC lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("not a proxy request", func(t *testing.T) {
		rec := &recordingDial{Target: target}
		proxy := startServer(t, Config{Dial: rec.Dial})
		if _, _, err := relaytest.Curl(t, "http://"+proxy+"/file"); err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("origin-form request: %v", err)
		}
		if rec.Count() != 0 {
			t.Fatalf("origin-form request dialed %q", rec.Last())
		}
	})
}
