package client

import (
	"crypto/x509"
	"log/slog"
)

// Config says which servers the client rides and how it serves locally.
// The zero value of each field is its default; New checks it once.
type Config struct {
	// Servers are https://NAME:TOKEN@host[:port] URLs; with several, the
	// client fails over in order. At least one is required.
	Servers []string
	// How to trust a server without a public certificate: RootCAs (from
	// --ca), Pin ("sha256//BASE64" of its key, as porta server prints it),
	// or Insecure (no check at all; testing only). None: the system roots.
	RootCAs  *x509.CertPool
	Pin      string
	Insecure bool
	// Transport is "auto" (or ""), "h2" or "h3".
	Transport string
	// StdHTTP2 carries HTTP/2 over net/http's client instead of porta's
	// own (tunnel.DialerConfig.StdHTTP2).
	StdHTTP2 bool
	// DoHPath is the server's DoH path. "": "/dns-query".
	DoHPath string
	// Bootstrap are the resolvers (IP or IP:port) that resolve the
	// servers' own names, which the tunnel cannot. None: the system's.
	Bootstrap []string
	// ECH is how the connections to the servers use Encrypted Client
	// Hello, which keeps the server's name out of the clear: "auto" (or
	// ""), with the config list of the server's HTTPS record, looked up
	// through Bootstrap (none: no ECH); "off"; or an ECHConfigList in
	// base64, for every server. A server that rejects a config gets one
	// more try with the configs it sends back.
	ECH string
	// ECHFallback lets a connection go without ECH when the server rejects
	// it even so; by default the connect fails. Either way it is logged.
	ECHFallback bool

	// Records answer locally, without going out.
	Records Records
	// NoFastOpen makes SOCKS and HTTP CONNECT wait for the server's answer
	// before replying, so that the reply carries the tunnel's error. By
	// default they reply at once and a new connection costs one round trip.
	NoFastOpen bool
	// SOCKSUsers, if not empty, are the user → password pairs the SOCKS
	// proxy requires (RFC 1929), for local access control.
	SOCKSUsers map[string]string
	// PACProxies is what /proxy.pac on the HTTP proxy returns. Nil: the
	// HTTP proxy itself.
	PACProxies []string

	// Logger receives the client's log. nil: discard.
	Logger *slog.Logger
}

// setDefaults fills the fields whose zero value stands for a default, once,
// in New's copy.
func (c *Config) setDefaults() {
	if c.DoHPath == "" {
		c.DoHPath = "/dns-query"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}
