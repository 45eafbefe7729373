package socks5

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/porta443/porta/internal/testenv"
)

const fileSize = 30 << 20

// fileServer serves one random file of fileSize at /file and returns its
// address and digest.
func fileServer(t *testing.T) (addr string, sum [32]byte) {
	t.Helper()
	body, sum := payload(t, fileSize)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/file" {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "file", time.Time{}, bytes.NewReader(body))
	}))
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String(), sum
}

// runCurl runs curl with args and returns the SHA-256 of what it wrote to
// stdout, or its error and stderr.
func runCurl(t *testing.T, args ...string) ([32]byte, error) {
	t.Helper()
	curl := testenv.LookPath(t, "curl", "curl")
	h := sha256.New()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), curl, append([]string{"-sS", "--fail", "--max-time", "50"}, args...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()} // no *_proxy from the environment
	cmd.Stdout = h
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return [32]byte{}, fmt.Errorf("curl %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return [32]byte(h.Sum(nil)), nil
}

// TestCurl downloads a 30 MB file through the server with curl: by name
// (resolved by Dial, not locally), by address, and with a password.
func TestCurl(t *testing.T) {
	target, sum := fileServer(t)
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
			rec := &recordingDial{target: target}
			proxy := startServer(t, Config{Dial: rec.Dial, Users: tc.users})
			got, err := runCurl(t, tc.args(proxy)...)
			if err != nil {
				t.Fatal(err)
			}
			if got != sum {
				t.Fatalf("SHA-256 %x, want %x", got, sum)
			}
			if a := rec.last(); a != tc.wantDial {
				t.Fatalf("Dial got %q, want %q", a, tc.wantDial)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		rec := &recordingDial{target: target}
		proxy := startServer(t, Config{Dial: rec.Dial, Users: users})
		if _, err := runCurl(t, "--proxy-user", "alice:guess", "--socks5-hostname", proxy, "http://files.porta.test:"+port+"/file"); err == nil {
			t.Fatal("curl succeeded with a wrong password")
		}
		if n := rec.count(); n != 0 {
			t.Fatalf("Dial called %d times", n)
		}
	})
}
