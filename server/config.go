package server

import (
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// Config says what a Server serves and how. The zero value of each field is
// its default; New checks the whole of it once.
type Config struct {
	// The certificate: CertFile and KeyFile (a PEM chain and key, read again
	// by Reload), or SelfSigned (made once and kept in StateDir). One of the
	// two is required.
	CertFile, KeyFile string
	SelfSigned        bool

	// ACME names get their certificates from an ACME CA, obtained at
	// start and renewed in the background while serving, kept in
	// StateDir. Challenges are answered on the server's own port
	// (TLS-ALPN-01) and on the plain HTTP listener when there is one
	// (HTTP-01). With CertFile or SelfSigned too, that certificate serves
	// every other name; a name of ACME is never given it.
	ACME []string
	// ACMEEmail is the ACME account's contact address. "": none.
	ACMEEmail string
	// ACMECA is the https:// URL of the CA's ACME directory. "": Let's
	// Encrypt.
	ACMECA string
	// ACMECARoot is a PEM file of the roots the CA's own HTTPS is
	// verified with (for a private or test CA). "": the system's.
	ACMECARoot string
	// acmeRenewCheck is how often renewals are looked for. 0:
	// acmeRenewCheck. For tests, through export_test.go.
	acmeRenewCheck time.Duration

	// StateDir keeps certificates and keys. "": DefaultStateDir().
	StateDir string

	// ECHPublicName turns on Encrypted Client Hello: it is the name that
	// ECH clients put in their outer ClientHello, in the clear, while the
	// real one travels encrypted. The certificate must cover it too (a
	// self-signed one is made to). The X25519 key is made once and kept in
	// StateDir. "": no ECH.
	ECHPublicName string
	// ECHRotate is how often the ECH key is replaced while the server
	// runs; the replaced one is still accepted until the next rotation.
	// An hour at least. 0: 24 hours. Negative: never.
	ECHRotate time.Duration

	// The website: SiteDir (static files) or SiteProxy (the URL of a local
	// backend). Neither: a small built-in homepage.
	SiteDir   string
	SiteProxy string

	// HSTSMaxAge is the max-age of the Strict-Transport-Security header
	// on the website's answers over HTTPS (never on plain HTTP), in whole
	// seconds; a second at least. 0: a year. Negative: no header. With
	// SiteProxy, a header the backend sends is passed on as it is.
	HSTSMaxAge time.Duration

	// DoHPath is where DNS-over-HTTPS is served, and every path below it.
	// "": "/dns-query".
	DoHPath string
	// Upstreams are the resolvers behind DoH and the tunnel's name lookups:
	// udp://, tcp://, tls:// or https:// URLs. Empty: the system's.
	Upstreams []string

	// Users may use the tunnel: "NAME:TOKEN" entries, and a UsersFile read
	// again by Reload. None: no tunnel, and the server is only its website
	// and DoH.
	Users     []string
	UsersFile string
	// AllowPrivate lets tunnels reach loopback, private and link-local
	// addresses and the server's own.
	AllowPrivate bool

	// ReadHeaderTimeout bounds the TLS handshake and the reading of request
	// headers. 0: 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes connections with nothing in flight. 0: 3 minutes.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds request headers. 0: net/http's default,
	// http.DefaultMaxHeaderBytes (1 MiB), as a stock server has it: HTTP/2
	// shows it to everyone in SETTINGS_MAX_HEADER_LIST_SIZE. (Room for the
	// longest DoH GET, 87,380 bytes of base64, and more: a longer URI
	// reaches the DoH handler and gets its 414.)
	MaxHeaderBytes int

	// ProxyProtocol reads a PROXY protocol header (v1 or v2, as HAProxy
	// and cloud load balancers send it) at the start of each TCP
	// connection from ProxyFrom, and takes the client's address from it
	// for the logs and for everything the server does by address. A
	// connection from ProxyFrom without a header is refused, and so is a
	// header from anywhere else; other connections are served as they
	// come. HTTP/3 (UDP) is not affected.
	ProxyProtocol bool
	// ProxyFrom are the load balancers' addresses, CIDR prefixes or single
	// IPs; required with ProxyProtocol, refused without it.
	ProxyFrom []string

	// StdHTTP2 serves HTTP/2 with net/http's own server instead of
	// internal/h2's. That one cannot end a response while the request
	// still flows, so a tunnel whose target half-closes first drops the
	// client's upload from then on; it is there as a fallback.
	StdHTTP2 bool

	// Logger receives the server's log. nil: discard.
	Logger *slog.Logger
}

// DefaultStateDir is where state is kept when Config.StateDir is empty:
// $STATE_DIRECTORY (set by systemd's StateDirectory=), else
// $XDG_STATE_HOME/porta, else ~/.local/state/porta.
func DefaultStateDir() string {
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "porta")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "porta-state")
	}
	return filepath.Join(home, ".local", "state", "porta")
}

// setDefaults fills the fields whose zero value stands for a default, once,
// in New's copy: after it, every field holds what is used.
func (c *Config) setDefaults() {
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir()
	}
	if c.acmeRenewCheck == 0 {
		c.acmeRenewCheck = acmeRenewCheck
	}
	if c.ECHRotate == 0 {
		c.ECHRotate = defaultECHRotate
	}
	if c.HSTSMaxAge == 0 {
		c.HSTSMaxAge = defaultHSTSMaxAge
	}
	if c.DoHPath == "" {
		c.DoHPath = "/dns-query"
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = 10 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 3 * time.Minute
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = http.DefaultMaxHeaderBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}
