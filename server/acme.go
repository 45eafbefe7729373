package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
)

// acmeCerts obtains and renews the certificates of Config.ACME from an
// ACME CA with certmagic, which over x/crypto's autocert brings what
// porta needs of it: issuance at start and retries with exponential
// backoff in the background (autocert only tries in a handshake, and
// again a minute later), log lines for every failure (autocert logs
// nothing, and its renewals fail silently), renewal when a third of a
// certificate's life is left (autocert renews a fixed 30 days ahead, so
// a certificate of a week or less would be renewed again and again),
// ACME Renewal Information, and OCSP stapling.
//
// Challenges are answered on the server's own listeners: TLS-ALPN-01 by
// GetCertificate on the TLS port, HTTP-01 by httpHandler on --http-listen.
// certmagic, finding those ports taken, starts no listener of its own.
type acmeCerts struct {
	names  []string // lower case, as given
	magic  *certmagic.Config
	issuer *certmagic.ACMEIssuer
	cache  *certmagic.Cache
	log    *slog.Logger
	stop   context.CancelFunc // ends the management started by start
}

// acmeRenewCheck is how often certmagic looks for certificates to renew
// (its default) unless Config.acmeRenewCheck says otherwise.
const acmeRenewCheck = 10 * time.Minute

func newACME(cfg *Config, log *slog.Logger) (*acmeCerts, error) {
	if len(cfg.ACME) == 0 {
		switch {
		case cfg.ACMEEmail != "":
			return nil, &ConfigError{Field: "ACMEEmail", Err: errors.New("only with ACME names")}
		case cfg.ACMECA != "":
			return nil, &ConfigError{Field: "ACMECA", Err: errors.New("only with ACME names")}
		case cfg.ACMECARoot != "":
			return nil, &ConfigError{Field: "ACMECARoot", Err: errors.New("only with ACME names")}
		}
		return nil, nil
	}
	a := &acmeCerts{log: log}
	for _, n := range cfg.ACME {
		name := strings.ToLower(strings.TrimSuffix(n, "."))
		switch {
		case strings.HasPrefix(name, "*."):
			return nil, &ConfigError{Field: "ACME", Err: fmt.Errorf("%q: a wildcard needs the DNS-01 challenge, which porta does not answer", n)}
		case net.ParseIP(name) != nil || !plausibleHostname(name) || !strings.Contains(name, ".") && name != "localhost":
			return nil, &ConfigError{Field: "ACME", Err: fmt.Errorf("%q: want a DNS name such as vps.example.org", n)}
		}
		if !slices.Contains(a.names, name) {
			a.names = append(a.names, name)
		}
	}
	if e := cfg.ACMEEmail; e != "" && (!strings.Contains(e, "@") || strings.ContainsAny(e, " \t\r\n")) {
		return nil, &ConfigError{Field: "ACMEEmail", Err: fmt.Errorf("%q: want an email address", e)}
	}
	tmpl := certmagic.ACMEIssuer{Email: cfg.ACMEEmail, Agreed: true}
	if cfg.ACMECA != "" {
		u, err := url.Parse(cfg.ACMECA)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, &ConfigError{Field: "ACMECA", Err: fmt.Errorf("%q: want the https:// URL of an ACME directory", cfg.ACMECA)}
		}
		tmpl.CA, tmpl.TestCA = cfg.ACMECA, cfg.ACMECA // no staging CA to fall back on but the CA itself
	}
	if cfg.ACMECARoot != "" {
		pem, err := os.ReadFile(cfg.ACMECARoot)
		if err != nil {
			return nil, &ConfigError{Field: "ACMECARoot", Err: err}
		}
		tmpl.TrustedRoots = x509.NewCertPool()
		if !tmpl.TrustedRoots.AppendCertsFromPEM(pem) {
			return nil, &ConfigError{Field: "ACMECARoot", Err: fmt.Errorf("%s: no PEM certificate in it", cfg.ACMECARoot)}
		}
	}
	zl := zapToSlog(log.Handler())
	dir := filepath.Join(cfg.StateDir, "acme")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, &ConfigError{Field: "StateDir", Err: err}
	}
	a.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return a.magic, nil },
		RenewCheckInterval: cfg.acmeRenewCheck,
		Logger:             zl,
	})
	a.magic = certmagic.New(a.cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: dir},
		Logger:  zl,
	})
	tmpl.Logger = zl
	a.issuer = certmagic.NewACMEIssuer(a.magic, tmpl)
	a.magic.Issuers = []certmagic.Issuer{a.issuer}
	return a, nil
}

// start points the challenge solvers at the server's own listeners and
// begins obtaining and renewing in the background: certificates already
// in the state folder are loaded at once, the others obtained, with
// retries, while the server serves. httpAddr is nil without plain HTTP,
// and HTTP-01 is then off.
func (a *acmeCerts) start(tlsAddr, httpAddr net.Addr) {
	host, port := hostPort(tlsAddr)
	a.issuer.ListenHost, a.issuer.AltTLSALPNPort = host, port
	if httpAddr == nil {
		a.issuer.DisableHTTPChallenge = true
	} else {
		_, a.issuer.AltHTTPPort = hostPort(httpAddr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.stop = cancel
	if err := a.magic.ManageAsync(ctx, a.names); err != nil {
		a.log.Error("acme: managing certificates", "names", a.names, "err", err)
	}
}

// close ends the management and the certificate cache's goroutine.
func (a *acmeCerts) close() {
	if a.stop != nil {
		a.stop()
	}
	a.cache.Stop()
}

func hostPort(addr net.Addr) (string, int) {
	if ta, ok := addr.(*net.TCPAddr); ok {
		host := ""
		if !ta.IP.IsUnspecified() {
			host = ta.IP.String()
		}
		return host, ta.Port
	}
	return "", 0
}

// handles reports whether hello is for one of the ACME names; an ACME
// server's TLS-ALPN-01 challenge is too (RFC 8737: its SNI is the name).
func (a *acmeCerts) handles(hello *tls.ClientHelloInfo) bool {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	return name != "" && slices.Contains(a.names, name)
}

// GetCertificate is the certificate for an ACME name, or the TLS-ALPN-01
// challenge certificate for one. A name whose certificate has not been
// obtained yet gets none: the handshake fails rather than be given a
// certificate for another name.
func (a *acmeCerts) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	cert, err := a.magic.GetCertificate(hello)
	if err != nil {
		return nil, err
	}
	if isChallenge(hello) {
		return cert, nil
	}
	leaf := cert.Leaf
	if leaf == nil && len(cert.Certificate) > 0 {
		leaf, _ = x509.ParseCertificate(cert.Certificate[0])
	}
	if leaf == nil || leaf.VerifyHostname(hello.ServerName) != nil {
		return nil, fmt.Errorf("acme: no certificate for %q yet", hello.ServerName)
	}
	return cert, nil
}

func isChallenge(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmez.ACMETLS1Protocol
}

// httpHandler answers HTTP-01 challenges and passes everything else on.
func (a *acmeCerts) httpHandler(next http.Handler) http.Handler {
	return a.issuer.HTTPChallengeHandler(next)
}

// withACMEALPN offers "acme-tls/1" on the TCP listener, for TLS-ALPN-01
// (RFC 8737): only an ACME server asks for it, with no other protocol.
// net/http keeps the order given: acme-tls/1 comes last, as on Caddy.
func withACMEALPN(c *tls.Config) *tls.Config {
	if len(c.NextProtos) == 0 {
		c.NextProtos = []string{"h2", "http/1.1"}
	}
	c.NextProtos = append(c.NextProtos, acmez.ACMETLS1Protocol)
	return c
}

// tcpTLSConfig is tlsConfig for the TCP listener, offering acme-tls/1
// too when there are ACME names.
func (s *Server) tcpTLSConfig() *tls.Config {
	c := tlsConfig(s.certs.GetCertificate)
	if s.certs.acme != nil {
		withACMEALPN(c)
	}
	return c
}

// plainHTTPHandler is what --http-listen serves: HTTP-01 challenges when
// there are ACME names, and redirects to HTTPS.
func (s *Server) plainHTTPHandler(httpsPort int) http.Handler {
	var h http.Handler = redirectToHTTPS{httpsPort: httpsPort}
	if s.certs.acme != nil {
		h = s.certs.acme.httpHandler(h)
	}
	return h
}

func httpAddr(l Listeners) net.Addr {
	if l.HTTP == nil {
		return nil
	}
	return l.HTTP.Addr()
}
