package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/porta443/porta/internal/selfsigned"
)

// certSource hands out the certificate for a TLS handshake. Files can be
// read again (Reload) without dropping connections: a handshake takes
// whatever certificate is current. A self-signed certificate is renewed
// with the same key while the server runs (certlife.go); a --cert one is
// watched for its expiry and for the names clients reach it by.
type certSource struct {
	certFile, keyFile string
	selfSigned        bool
	log               *slog.Logger
	current           atomic.Pointer[tls.Certificate]
	names             *sniWarnings // nil for a self-signed certificate: clients pin its key
	echName           string       // the ECH public name, which the certificate must cover too; "": none
	warnedAt          atomic.Int64 // unix nanoseconds of the last expiry warning from maintain
	acme              *acmeCerts   // nil without Config.ACME; with it, current may be nil
}

func (c *certSource) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c.acme != nil && c.acme.handles(hello) {
		return c.acme.GetCertificate(hello)
	}
	cert := c.current.Load()
	if cert == nil {
		return nil, fmt.Errorf("no certificate for %q: not an ACME name", hello.ServerName)
	}
	if c.names != nil && hello.ServerName != "" {
		c.names.check(cert.Leaf, hello.ServerName)
	}
	return cert, nil
}

// reload reads the files again and warns if the certificate is near or
// past its expiry. On error the certificate in use is kept.
func (c *certSource) reload() error {
	if c.certFile == "" {
		return nil // ACME alone
	}
	certPEM, err := os.ReadFile(c.certFile)
	if err != nil {
		return &ConfigError{Field: "CertFile", Err: err}
	}
	keyPEM, err := os.ReadFile(c.keyFile)
	if err != nil {
		return &ConfigError{Field: "KeyFile", Err: err}
	}
	pair, err := selfsigned.Pair(certPEM, keyPEM)
	if err != nil {
		return &FieldsError{Format: "%s / %s", Fields: []string{"CertFile", "KeyFile"}, Values: []string{c.certFile, c.keyFile}, Err: err}
	}
	if !c.selfSigned && !covers(pair.Leaf, c.echName) { // a self-signed one is renewed to cover it
		return &ConfigError{Field: "ECHPublicName", Err: fmt.Errorf("the certificate in %s does not cover %q", c.certFile, c.echName)}
	}
	c.current.Store(&pair)
	if !c.selfSigned { // one that is due is renewed instead
		c.warnExpiry(time.Now())
	}
	return nil
}

func newCertSource(cfg *Config, log *slog.Logger) (*certSource, error) {
	acme, err := newACME(cfg, log)
	if err != nil {
		return nil, err
	}
	c, err := newFileCertSource(cfg, log, acme != nil)
	if err != nil {
		if acme != nil {
			acme.close()
		}
		return nil, err
	}
	c.acme = acme
	return c, nil
}

// close stops what the certificates run in the background.
func (c *certSource) close() {
	if c.acme != nil {
		c.acme.close()
	}
}

// newFileCertSource is the --cert or --self-signed certificate; none is
// needed with ACME names.
func newFileCertSource(cfg *Config, log *slog.Logger, acme bool) (*certSource, error) {
	switch {
	case cfg.SelfSigned && (cfg.CertFile != "" || cfg.KeyFile != ""):
		return nil, &FieldsError{Format: "%s: not with %s/%s", Fields: []string{"SelfSigned", "CertFile", "KeyFile"}}
	case cfg.SelfSigned:
		c := &certSource{
			certFile:   filepath.Join(cfg.StateDir, "self-signed.crt"),
			keyFile:    filepath.Join(cfg.StateDir, "self-signed.key"),
			selfSigned: true,
			log:        log,
			echName:    fileECHName(cfg),
		}
		if err := ensureSelfSigned(c.certFile, c.keyFile, c.echName); err != nil {
			return nil, &ConfigError{Field: "SelfSigned", Err: err}
		}
		if err := c.reload(); err != nil {
			return nil, err
		}
		// A certificate kept from before may be due, made for longer than
		// selfsigned.Validity (porta once made them for ten years), or
		// made before ECH was turned on: renewing adds the public name.
		if leaf := c.current.Load().Leaf; renewDue(leaf, time.Now()) || !covers(leaf, c.echName) {
			if err := c.renew(time.Now()); err != nil {
				return nil, &ConfigError{Field: "SelfSigned", Err: err}
			}
		}
		return c, nil
	case cfg.CertFile == "" && cfg.KeyFile == "" && acme:
		return &certSource{log: log}, nil
	case cfg.CertFile == "" && cfg.KeyFile == "":
		return nil, &FieldsError{Format: "no certificate: give %s and %s, or %s", Fields: []string{"CertFile", "KeyFile", "SelfSigned"}}
	case cfg.CertFile == "":
		return nil, &FieldsError{Format: "%s: needs %s too", Fields: []string{"KeyFile", "CertFile"}}
	case cfg.KeyFile == "":
		return nil, &FieldsError{Format: "%s: needs %s too", Fields: []string{"CertFile", "KeyFile"}}
	}
	c := &certSource{certFile: cfg.CertFile, keyFile: cfg.KeyFile, log: log, echName: fileECHName(cfg)}
	c.names = &sniWarnings{log: log, certFile: cfg.CertFile}
	return c, c.reload()
}

// ensureSelfSigned makes the self-signed pair unless both files exist, so
// that its pin stays the same from one start to the next; it covers
// echName too unless that is "".
func ensureSelfSigned(certFile, keyFile, echName string) error {
	_, errCert := os.Stat(certFile)
	_, errKey := os.Stat(keyFile)
	if errCert == nil && errKey == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return err
	}
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		hosts = append([]string{h}, hosts...)
	}
	if echName != "" {
		hosts = append(hosts, echName)
	}
	certPEM, keyPEM, err := selfsigned.Generate(hosts...)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, certPEM, 0o644)
}

// covers reports whether leaf is valid for name; every certificate covers
// the name "".
func covers(leaf *x509.Certificate, name string) bool {
	return name == "" || leaf.VerifyHostname(name) == nil
}
