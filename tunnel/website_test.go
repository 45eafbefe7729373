package tunnel

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// newWebsite is the website a tunnel server fronts in tests: a file
// server over a temporary directory.
func newWebsite(t testing.TB) http.Handler {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"index.html": "<!doctype html><title>Welcome</title><p>Hello from the website.\n",
		"notes.txt":  "Just a plain website.\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return http.FileServer(http.Dir(dir))
}

// wantWebsite sends req with d.RoundTrip and fails t unless the answer is
// the test website's page.
func wantWebsite(t *testing.T, d *Dialer, req *http.Request) {
	t.Helper()
	resp, err := d.RoundTrip(req)
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Contains(page, []byte("Hello from the website")) {
		t.Fatalf("RoundTrip: %d %q, %v; want the website's page", resp.StatusCode, page, err)
	}
}
