// Package testenv holds what tests across porta share: external tools that
// may be missing, and a trusted loopback certificate.
package testenv

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/porta443/porta/internal/selfsigned"
)

// LookPath finds an external program that a test needs. Without it the test
// is skipped under a plain `go test` (naming the Debian package to install)
// and fails when CI is set, since .ci/run installs every such package.
func LookPath(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found (Debian package %s); .ci/run should have installed it", name, debianPackage)
	}
	t.Skipf("%s not found: apt-get install %s", name, debianPackage)
	return ""
}

// Cert is a self-signed certificate for 127.0.0.1, ::1 and localhost, with
// the pool that trusts it and its files on disk.
type Cert struct {
	TLS      tls.Certificate
	Pool     *x509.CertPool
	CertFile string // PEM chain
	KeyFile  string // PEM key
}

// NewCert makes a fresh Cert with a P-256 key, valid from now for
// selfsigned.Validity, whose files live in t.TempDir().
func NewCert(t testing.TB) *Cert {
	t.Helper()
	return NewCertFor(t, "localhost", "127.0.0.1", "::1")
}

// NewCertAt makes a Cert for key (an *ecdsa.PrivateKey or
// *rsa.PrivateKey), valid from an hour before now for
// selfsigned.Validity, whose files live in t.TempDir().
func NewCertAt(t testing.TB, key crypto.Signer, now time.Time) *Cert {
	t.Helper()
	return newCert(t, key, now, "localhost", "127.0.0.1", "::1")
}

// NewCertFor makes a fresh Cert as NewCert does, for hosts (names or IP
// addresses) instead.
func NewCertFor(t testing.TB, hosts ...string) *Cert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return newCert(t, key, time.Now(), hosts...)
}

func newCert(t testing.TB, key crypto.Signer, now time.Time, hosts ...string) *Cert {
	t.Helper()
	certPEM, keyPEM, err := selfsigned.Issue(key, now, hosts...)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := selfsigned.Pair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(pair.Leaf)
	dir := t.TempDir()
	c := &Cert{TLS: pair, Pool: pool, CertFile: dir + "/cert.pem", KeyFile: dir + "/key.pem"}
	if err := os.WriteFile(c.CertFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.KeyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// ClientTLS is a client config that trusts c, for the given ALPN protocols.
func (c *Cert) ClientTLS(nextProtos ...string) *tls.Config {
	return &tls.Config{RootCAs: c.Pool, ServerName: "localhost", NextProtos: nextProtos}
}
