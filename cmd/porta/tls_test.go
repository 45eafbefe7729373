package main

import (
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestHSTSMaxAgeFlag: --hsts-max-age, and its config key, set the
// website's Strict-Transport-Security; 0 turns it off.
func TestHSTSMaxAgeFlag(t *testing.T) {
	config := filepath.Join(t.TempDir(), "porta.yaml")
	os.WriteFile(config, []byte("hsts-max-age: 2h\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"max-age=31536000"}},
		{[]string{"--hsts-max-age", "720h"}, []string{"max-age=2592000"}},
		{[]string{"--config", config}, []string{"max-age=7200"}},
		{[]string{"--hsts-max-age", "0"}, nil},
	} {
		args := append([]string{"server", "--listen", "127.0.0.1:0", "--self-signed", "--state-dir", t.TempDir()}, tc.args...)
		_, addr := startPorta(t, args...)
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		resp, err := c.Get("https://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		c.CloseIdleConnections()
		if got := resp.Header.Values("Strict-Transport-Security"); !slices.Equal(got, tc.want) {
			t.Errorf("porta %q: Strict-Transport-Security %q, want %q", tc.args, got, tc.want)
		}
	}
}
