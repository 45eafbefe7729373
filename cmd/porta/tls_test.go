package main

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/porta443/porta/internal/testenv"
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

// testsslFinding is one entry of testssl.sh's flat JSON (--jsonfile).
type testsslFinding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Finding  string `json:"finding"`
}

// TestTestssl runs testssl.sh (-p -s -f -S -h -U: protocols, cipher
// categories, forward secrecy, server defaults and certificate, HTTP
// headers, vulnerabilities) against `porta server --self-signed` on
// loopback and checks its JSON: no finding at MEDIUM or above but those a
// self-signed certificate causes by itself, and what the server offers is
// what it should. .ci/run runs it on its own, after the rest.
func TestTestssl(t *testing.T) {
	testssl := testenv.LookPath(t, "testssl", "testssl.sh")
	// The findings at MEDIUM or above that a self-signed certificate
	// causes by itself, whatever the server does, and why each is accepted.
	selfSigned := map[string]string{
		"cert_chain_of_trust": "self-signed: no CA vouches for it; clients trust it by its pin (--pin) or --ca",
		"cert_revocation":     "self-signed: no CA to publish a CRL or answer OCSP for it",
	}
	_, addr := startPorta(t, "server", "--listen", "127.0.0.1:0", "--self-signed", "--state-dir", t.TempDir())
	out := filepath.Join(t.TempDir(), "testssl.json")
	cmd := exec.CommandContext(t.Context(), testssl, "--quiet", "--color", "0", "--warnings", "off",
		"--nodns", "none", // loopback only: no rDNS, CAA or MX lookups
		"-p", "-s", "-f", "-S", "-h", "-U", "--jsonfile", out, addr)
	begun := time.Now()
	text, err := cmd.CombinedOutput()
	t.Logf("testssl took %v", time.Since(begun).Round(time.Second))
	if err != nil {
		t.Logf("testssl: %v", err) // it exits non-zero for findings too; the JSON decides
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("no JSON from testssl: %v\n%s", err, text)
	}
	var findings []testsslFinding
	if err := json.Unmarshal(data, &findings); err != nil {
		t.Fatalf("testssl JSON: %v", err)
	}
	byID := map[string]testsslFinding{}
	for _, f := range findings {
		byID[f.ID] = f
		switch f.Severity {
		case "MEDIUM", "HIGH", "CRITICAL", "FATAL":
		case "WARN":
			if f.ID == "engine_problem" {
				continue // testssl's own openssl lacks GOST engines: about the scanner, not the server
			}
		default:
			continue
		}
		if why, ok := selfSigned[f.ID]; ok {
			t.Logf("accepted: %s %s %q: %s", f.Severity, f.ID, f.Finding, why)
			continue
		}
		t.Errorf("testssl: %s %s: %s", f.Severity, f.ID, f.Finding)
	}
	// What is offered, so that a scan that checked nothing cannot pass.
	for id, want := range map[string]string{
		"TLS1":                   "not offered",
		"TLS1_1":                 "not offered",
		"TLS1_2":                 "offered",
		"TLS1_3":                 "offered with final",
		"ALPN_HTTP2":             "h2",
		"ALPN":                   "http/1.1",
		"cipherlist_AVERAGE":     "not offered", // the CBC suites
		"cipherlist_3DES_IDEA":   "not offered",
		"PFS":                    "offered",
		"LUCKY13":                "not vulnerable",
		"HSTS_time":              "365 days (=31536000 seconds) > 15552000 seconds",
		"cert_validityPeriod":    "No finding",
		"X-Content-Type-Options": "nosniff",
	} {
		if got, ok := byID[id]; !ok || got.Finding != want {
			t.Errorf("testssl %s: %q, want %q", id, got.Finding, want)
		}
	}
	if t.Failed() {
		t.Logf("testssl's report:\n%s", text)
	}
}
