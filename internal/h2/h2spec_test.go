package h2

import (
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/porta443/porta/internal/testenv"
)

// TestH2Spec runs h2spec, the HTTP/2 conformance suite, against this
// package's server and net/http's, and wants the same report from both:
// 140 of its 145 cases pass, and the four net/http fails (it answers 400
// to connection-specific headers rather than resetting, hangs up on a
// SETTINGS frame that repeats a setting, and reads frames up to its own
// 1 MiB MAX_FRAME_SIZE) fail here the same way, since a server that
// answers a probe differently from net/http's is told apart by it.
func TestH2Spec(t *testing.T) {
	bin := testenv.LookPath(t, "h2spec", "h2spec (go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible)")
	// The handler reads the body before it answers, as a DoH POST does:
	// one that answers first may finish before a malformed body arrives,
	// on either server (net/http's usually wins that race, by luck of
	// its scheduling; ours writes without a hand-off and often loses it).
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return
		}
		w.Write([]byte("ok"))
	})
	run := func(ts *testServer) string {
		host, port, _ := net.SplitHostPort(ts.addr)
		out, _ := exec.Command(bin, "-h", host, "-p", port, "-t", "-k", "-o", "2").CombinedOutput()
		return string(out)
	}
	ours := summary(run(newServer(t, handler)))
	std := summary(run(newStdServer(t, handler)))
	t.Logf("ours:\n%s", ours)
	if !strings.Contains(ours, "145 tests") {
		t.Fatalf("h2spec did not run its 145 tests:\n%s", ours)
	}
	if ours != std {
		t.Errorf("h2spec differs from net/http's server:\n%s\nnet/http's:\n%s", ours, std)
	}
}

// summary is h2spec's report of the cases that failed and its count,
// without the run's time.
func summary(s string) string {
	if i := strings.Index(s, "Failures:"); i >= 0 {
		s = s[i:]
	}
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.Contains(l, "Finished in") {
			keep = append(keep, l)
		}
	}
	return strings.TrimSpace(strings.Join(keep, "\n"))
}
