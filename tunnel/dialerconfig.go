package tunnel

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/quic-go/quic-go"
)

// DialerConfig configures a Dialer.
type DialerConfig struct {
	// Servers are https://NAME:TOKEN@host[:port] URLs (port 443 if
	// omitted). With several, the Dialer fails over in order.
	Servers []string
	// RootCAs verifies the servers' certificates. Nil: the system roots.
	RootCAs *x509.CertPool
	// Pin, if set, is the server key's SHA-256 in the form
	// "sha256//BASE64" (of the certificate's SubjectPublicKeyInfo, as
	// curl's --pinnedpubkey and porta server --self-signed print it). The
	// pin replaces chain verification.
	Pin string
	// Insecure skips verifying the server (testing only).
	Insecure bool
	// ECH, if set, makes the connections to the servers use Encrypted
	// Client Hello. Nil: plain ClientHellos, the servers' names in the
	// clear.
	ECH *ECH
	// Transport is "auto" (or ""), "h2" or "h3". Auto races both at
	// connect and keeps HTTP/2 unless it fails or is much slower to
	// connect than HTTP/3, and skips a transport that failed recently.
	Transport string
	// ConnectTimeout bounds connecting to one server. Zero: 10 seconds.
	ConnectTimeout time.Duration
	// HTTP2 tunes the HTTP/2 connection. Nil: ClientHTTP2Config(). The
	// Dialer's own HTTP/2 client reads MaxReadFrameSize,
	// MaxReceiveBufferPerStream, MaxReceiveBufferPerConnection (zero: 16 KiB,
	// 4 MiB, 1 GiB), SendPingTimeout (zero: no health check) and
	// PingTimeout (zero: 15 s; also how long the server may take to
	// acknowledge SETTINGS); the other fields are for servers.
	HTTP2 *http.HTTP2Config
	// StdHTTP2 carries HTTP/2 over net/http's client instead of
	// internal/h2, porta's own, which takes less CPU per byte. The two
	// behave alike; this one is there to compare with and to fall back on.
	// It reads every field of HTTP2 that net/http's client does.
	StdHTTP2 bool
	// QUIC tunes the QUIC connection. Nil: ClientQUICConfig().
	QUIC *quic.Config
	// MaxStreamsPerConn is how many tunneled connections share one
	// connection to the server before the Dialer opens another. It must
	// not exceed the server's stream limit (1024 with ServerHTTP2Config
	// and ServerQUICConfig). Zero: 1000.
	MaxStreamsPerConn int
	// Resolver resolves the servers' host names. Nil: net.DefaultResolver.
	// porta's client passes one that never asks the client's own DNS
	// resolver, which would need the tunnel to answer (a bootstrap loop).
	Resolver Resolver
	// Logger receives connection events. Nil: discard.
	Logger *slog.Logger
}

// NewDialer validates cfg and returns a Dialer. It does not connect yet.
func NewDialer(cfg DialerConfig) (*Dialer, error) {
	switch cfg.Transport {
	case "":
		cfg.Transport = "auto"
	case "auto", "h2", "h3":
	default:
		return nil, fmt.Errorf("tunnel: transport %q: want auto, h2 or h3", cfg.Transport)
	}
	if len(cfg.Servers) == 0 {
		return nil, errors.New("tunnel: no servers")
	}
	if cfg.ConnectTimeout < 0 {
		return nil, errors.New("tunnel: negative ConnectTimeout")
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.MaxStreamsPerConn < 0 {
		return nil, errors.New("tunnel: negative MaxStreamsPerConn")
	}
	if cfg.MaxStreamsPerConn == 0 {
		cfg.MaxStreamsPerConn = 1000
	}
	if cfg.HTTP2 == nil {
		cfg.HTTP2 = ClientHTTP2Config()
	}
	if cfg.QUIC == nil {
		cfg.QUIC = ClientQUICConfig()
	}
	var pin []byte
	if cfg.Pin != "" {
		b64, ok := strings.CutPrefix(cfg.Pin, "sha256//")
		var err error
		if pin, err = base64.StdEncoding.DecodeString(b64); !ok || err != nil || len(pin) != sha256.Size {
			return nil, fmt.Errorf("tunnel: pin %q: want sha256//BASE64 of 32 bytes", cfg.Pin)
		}
	}
	d := &Dialer{cfg: cfg, log: cfg.Logger}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	for i, s := range cfg.Servers {
		si, err := parseServer(s, cfg, pin)
		if err != nil {
			return nil, fmt.Errorf("tunnel: server %d: %w", i+1, err)
		}
		d.servers = append(d.servers, si)
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	return d, nil
}

func parseServer(s string, cfg DialerConfig, pin []byte) (*serverInfo, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a URL") // the error would echo the token
	}
	if u.Scheme != "https" || u.Host == "" || u.User == nil {
		return nil, fmt.Errorf("want https://NAME:TOKEN@host[:port], got %s", u.Redacted())
	}
	name := u.User.Username()
	token, _ := u.User.Password()
	if name == "" || token == "" {
		return nil, fmt.Errorf("%s: missing NAME or TOKEN", u.Redacted())
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	si := &serverInfo{
		url:  u,
		host: u.Hostname(),
		addr: net.JoinHostPort(u.Hostname(), port),
		auth: "Basic " + base64.StdEncoding.EncodeToString([]byte(name+":"+token)),
	}
	si.tls = &tls.Config{ServerName: si.host, RootCAs: cfg.RootCAs, InsecureSkipVerify: cfg.Insecure}
	if pin != nil {
		si.tls.InsecureSkipVerify = true
		si.tls.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("tunnel: server sent no certificate")
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
			if string(sum[:]) != string(pin) {
				return errors.New("tunnel: server key does not match the pin")
			}
			return nil
		}
	}
	return si, nil
}
