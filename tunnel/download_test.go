package tunnel

import (
	"context"
	"crypto/sha256"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/porta443/porta/internal/testenv"
)

const bigFileSize = 100 << 20

// bigFileServer serves a 100 MB file of random bytes over plain HTTP on
// 127.0.0.1 and returns its URL and SHA-256.
func bigFileServer(t *testing.T) (url string, sum [32]byte) {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "file"))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	src := rand.NewChaCha8([32]byte{1, 2, 3})
	if _, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(src, bigFileSize)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	copy(sum[:], h.Sum(nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir)), ErrorLog: log.New(io.Discard, "", 0)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); wg.Wait() })
	return "http://" + ln.Addr().String() + "/file", sum
}

// curlThrough runs Debian's curl against the tunnel server as an HTTPS
// proxy and returns the SHA-256 and size of what it downloaded.
func curlThrough(t *testing.T, ts *testServer, url string, args ...string) ([32]byte, int64) {
	t.Helper()
	curl := testenv.LookPath(t, "curl", "curl")
	h := sha256.New()
	var n countWriter
	args = append(args, "-sS", "--fail", "-x", "https://"+testUser+":"+testToken+"@"+ts.addr,
		"--proxy-cacert", ts.cert.CertFile, "--noproxy", "", url)
	cmd := exec.Command(curl, args...)
	cmd.Env = append(os.Environ(), "http_proxy=", "https_proxy=", "HTTPS_PROXY=", "ALL_PROXY=", "NO_PROXY=")
	cmd.Stdout = io.MultiWriter(h, &n)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("curl %v: %v\n%s", args, err, stderr.String())
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, int64(n)
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

// TestBigDownload: a 100 MB file arrives intact through the tunnel — with
// curl's HTTP/1.1 CONNECT over TLS, and with the Go Dialer over HTTP/2
// and HTTP/3.
func TestBigDownload(t *testing.T) {
	url, want := bigFileServer(t)
	run(t, func(t *testing.T, mode string) {
		ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
		var got [32]byte
		var n int64
		if mode == "h1" {
			got, n = curlThrough(t, ts, url, "-p")
		} else {
			d := newDialer(t, ts, mode, testUser, testToken)
			tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
			defer tr.CloseIdleConnections()
			req, _ := http.NewRequestWithContext(context.Background(), "GET", url, nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			n, err = io.Copy(h, resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			copy(got[:], h.Sum(nil))
		}
		if got != want || n != bigFileSize {
			t.Fatalf("got %d bytes with SHA-256 %x, want %d with %x", n, got, bigFileSize, want)
		}
	})
}

// TestCurlAbsoluteForm: curl without -p sends "GET http://..." to the
// proxy, which forwards it.
func TestCurlAbsoluteForm(t *testing.T) {
	url, want := bigFileServer(t)
	ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
	got, n := curlThrough(t, ts, url)
	if got != want || n != bigFileSize {
		t.Fatalf("got %d bytes with SHA-256 %x, want %d with %x", n, got, bigFileSize, want)
	}
	st := ts.h.cfg.Users.Stats()[0]
	if st.Total != 1 || st.BytesDown < bigFileSize {
		t.Fatalf("stats %+v: want one stream and the file counted down", st)
	}
	// An authenticated absolute-form request for a prohibited target is
	// refused with a reason.
	ts2 := newTunnelServer(t, HandlerConfig{})
	curl := testenv.LookPath(t, "curl", "curl")
	out, _ := exec.Command(curl, "-sS", "-i", "-x", "https://"+testUser+":"+testToken+"@"+ts2.addr,
		"--proxy-cacert", ts2.cert.CertFile, "--noproxy", "", url).CombinedOutput()
	if !strings.Contains(string(out), "403") || !strings.Contains(string(out), "error=destination_ip_prohibited") {
		t.Fatalf("curl to a prohibited target through the proxy:\n%s", out)
	}
}
