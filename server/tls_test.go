package server_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"slices"
	"testing"
	"time"

	"github.com/porta443/porta/internal/testenv"
	"github.com/porta443/porta/server"
)

// TestTLS12OffersOnlyECDHEWithAEAD offers each TLS 1.2 suite crypto/tls
// knows, one at a time, to a server with an ECDSA and one with an RSA
// certificate: only ECDHE with AES-GCM or ChaCha20-Poly1305 for that key
// type connects. TLS 1.3 connects; TLS 1.1 and 1.0 do not.
func TestTLS12OffersOnlyECDHEWithAEAD(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var suites []*tls.CipherSuite
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if slices.Contains(s.SupportedVersions, tls.VersionTLS12) {
			suites = append(suites, s)
		}
	}
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		want []string
	}{
		{"ECDSA", ecKey, []string{
			"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
			"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
			"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
		}},
		{"RSA", rsaKey, []string{
			"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
			"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
			"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert := testenv.NewCertAt(t, tc.key, time.Now())
			r := start(t, server.Config{CertFile: cert.CertFile, KeyFile: cert.KeyFile}, false)
			var got []string
			for _, s := range suites {
				cfg := cert.ClientTLS("http/1.1")
				cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
				cfg.CipherSuites = []uint16{s.ID}
				conn, err := tls.Dial("tcp", r.addr, cfg)
				if err != nil {
					continue
				}
				if state := conn.ConnectionState(); state.CipherSuite != s.ID || state.Version != tls.VersionTLS12 {
					t.Errorf("offered only %s: got %s, %s", s.Name, tls.CipherSuiteName(state.CipherSuite), tls.VersionName(state.Version))
				}
				conn.Close()
				got = append(got, s.Name)
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tc.want))
			if !slices.Equal(got, want) {
				t.Errorf("TLS 1.2 suites that connect:\n got %q\nwant %q", got, want)
			}

			for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11, tls.VersionTLS13} {
				cfg := cert.ClientTLS("http/1.1")
				cfg.MinVersion, cfg.MaxVersion = v, v
				conn, err := tls.Dial("tcp", r.addr, cfg)
				if err == nil {
					conn.Close()
				}
				if (err == nil) != (v == tls.VersionTLS13) {
					t.Errorf("%s: connected %v (%v)", tls.VersionName(v), err == nil, err)
				}
			}
		})
	}
}
