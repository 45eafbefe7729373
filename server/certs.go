package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/porta443/porta/internal/selfsigned"
)

// certSource hands out the certificate for a TLS handshake. Files can be
// read again (Reload) without dropping connections: a handshake takes
// whatever certificate is current.
type certSource struct {
	certFile, keyFile string
	current           atomic.Pointer[tls.Certificate]
}

func (c *certSource) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.current.Load(), nil
}

// reload reads the files again. On error the certificate in use is kept.
func (c *certSource) reload() error {
	certPEM, err := os.ReadFile(c.certFile)
	if err != nil {
		return fmt.Errorf("--cert: %w", err)
	}
	keyPEM, err := os.ReadFile(c.keyFile)
	if err != nil {
		return fmt.Errorf("--key: %w", err)
	}
	pair, err := selfsigned.Pair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("--cert %s / --key %s: %w", c.certFile, c.keyFile, err)
	}
	c.current.Store(&pair)
	return nil
}

func newCertSource(cfg *Config, stateDir string) (*certSource, error) {
	switch {
	case cfg.SelfSigned && (cfg.CertFile != "" || cfg.KeyFile != ""):
		return nil, errors.New("--self-signed: not with --cert/--key")
	case cfg.SelfSigned:
		c := &certSource{
			certFile: filepath.Join(stateDir, "self-signed.crt"),
			keyFile:  filepath.Join(stateDir, "self-signed.key"),
		}
		if err := ensureSelfSigned(c.certFile, c.keyFile); err != nil {
			return nil, fmt.Errorf("--self-signed: %w", err)
		}
		return c, c.reload()
	case cfg.CertFile == "" && cfg.KeyFile == "":
		return nil, errors.New("no certificate: give --cert and --key, or --self-signed")
	case cfg.CertFile == "":
		return nil, errors.New("--key: needs --cert too")
	case cfg.KeyFile == "":
		return nil, errors.New("--cert: needs --key too")
	}
	c := &certSource{certFile: cfg.CertFile, keyFile: cfg.KeyFile}
	return c, c.reload()
}

// ensureSelfSigned makes the self-signed pair unless both files exist, so
// that its pin stays the same from one start to the next.
func ensureSelfSigned(certFile, keyFile string) error {
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
	certPEM, keyPEM, err := selfsigned.Generate(hosts...)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, certPEM, 0o644)
}
