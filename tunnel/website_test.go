package tunnel

import (
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
