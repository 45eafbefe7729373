package server

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/porta443/porta/doh"
	"github.com/porta443/porta/internal/ech"
	"github.com/quic-go/quic-go/http3"
)

const (
	// defaultECHRotate is Config.ECHRotate's default: a new key every
	// day, the one before it accepted for a day more.
	defaultECHRotate = 24 * time.Hour
	// echKeysFile is where StateDir keeps the ECH keys.
	echKeysFile = "ech-keys.pem"
)

// echKeys are the server's Encrypted Client Hello keys: the ring kept in
// StateDir, handed to crypto/tls on every ECH handshake (TCP and QUIC
// alike) and rotated every ECHRotate while the server runs.
type echKeys struct {
	file       string
	publicName string
	rotate     time.Duration // <= 0: never
	log        *slog.Logger

	mu      sync.Mutex // rotations
	current atomic.Pointer[echState]
}

// echState is one ring with what is made from it, made once per ring.
type echState struct {
	ring ech.Ring
	keys []tls.EncryptedClientHelloKey
	list []byte // the ECHConfigList clients are given
}

func newECHState(r ech.Ring, publicName string) *echState {
	return &echState{ring: r, keys: r.TLSKeys(publicName), list: r.ConfigList(publicName)}
}

// newECHKeys loads the keys in cfg.StateDir, making them if there are none,
// for cfg.ECHPublicName; nil if that is "". A ring due for rotation is
// rotated at once.
func newECHKeys(cfg *Config, log *slog.Logger) (*echKeys, error) {
	if cfg.ECHPublicName == "" {
		return nil, nil
	}
	e := &echKeys{file: filepath.Join(cfg.StateDir, echKeysFile), publicName: cfg.ECHPublicName, rotate: cfg.ECHRotate, log: log}
	ring, err := loadECHRing(e.file, cfg.ECHPublicName, time.Now())
	if err != nil {
		return nil, err
	}
	e.current.Store(newECHState(ring, e.publicName))
	e.maintain(time.Now())
	return e, nil
}

// loadECHRing reads the ring in file, or makes one and writes it there if
// the file does not exist yet.
func loadECHRing(file, publicName string, now time.Time) (ech.Ring, error) {
	if err := checkPublicName(publicName); err != nil {
		return ech.Ring{}, err
	}
	data, err := os.ReadFile(file)
	if err == nil {
		ring, err := ech.ParsePEM(data)
		if err != nil {
			return ech.Ring{}, echFileError(file, err)
		}
		return ring, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return ech.Ring{}, echFileError(file, err)
	}
	ring, err := ech.NewRing(now)
	if err == nil {
		err = writeECHRing(file, ring)
	}
	if err != nil {
		return ech.Ring{}, echFileError(file, err)
	}
	return ring, nil
}

// checkECH checks cfg's ECH fields, putting the public name in lower
// case.
func checkECH(cfg *Config) error {
	if cfg.ECHPublicName == "" {
		return nil
	}
	cfg.ECHPublicName = strings.ToLower(cfg.ECHPublicName)
	if r := cfg.ECHRotate; r > 0 && r < maintainEvery {
		return &ConfigError{Field: "ECHRotate", Err: fmt.Errorf("%v is under %v, how often the server looks", r, maintainEvery)}
	}
	if err := checkPublicName(cfg.ECHPublicName); err != nil {
		return err
	}
	// The outer handshake's certificate comes from what serves the real
	// names: ACME alone gets one for the public name too (which must
	// then point at this server, as every ACME name must); a --cert or
	// self-signed certificate covers it, unless it is an ACME name.
	if len(cfg.ACME) > 0 && cfg.CertFile == "" && !cfg.SelfSigned && !acmeName(cfg, cfg.ECHPublicName) {
		cfg.ACME = append(slices.Clone(cfg.ACME), cfg.ECHPublicName)
	}
	return nil
}

// fileECHName is the name the --cert or self-signed certificate must
// cover for ECH: the public name, unless ACME gets its certificate.
func fileECHName(cfg *Config) string {
	if acmeName(cfg, cfg.ECHPublicName) {
		return ""
	}
	return cfg.ECHPublicName
}

// acmeName reports whether name is one of cfg's ACME names.
func acmeName(cfg *Config, name string) bool {
	return slices.ContainsFunc(cfg.ACME, func(n string) bool { return strings.EqualFold(strings.TrimSuffix(n, "."), name) })
}

// checkPublicName refuses a public name that clients would not take.
func checkPublicName(name string) error {
	if !ech.ValidPublicName(name) {
		return &ConfigError{Field: "ECHPublicName", Err: fmt.Errorf("%q is not a DNS name of two labels or more", name)}
	}
	return nil
}

func echFileError(file string, err error) error {
	return &ConfigError{Field: "ECHPublicName", Err: fmt.Errorf("ECH keys %s: %w", file, err)}
}

func writeECHRing(file string, r ech.Ring) error {
	data, err := r.MarshalPEM()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	return writeFileAtomic(file, data, 0o600)
}

// ECHConfigList returns the ECHConfigList that a server with cfg gives
// its clients (porta ech-config prints it), making and keeping the keys
// in cfg's StateDir if there are none yet. It rotates nothing: a running
// server does that.
func ECHConfigList(cfg Config) ([]byte, error) {
	if cfg.ECHPublicName == "" {
		return nil, &ConfigError{Field: "ECHPublicName", Err: errors.New("not set: ECH is off")}
	}
	cfg.setDefaults()
	name := strings.ToLower(cfg.ECHPublicName)
	ring, err := loadECHRing(filepath.Join(cfg.StateDir, echKeysFile), name, time.Now())
	if err != nil {
		return nil, err
	}
	return ring.ConfigList(name), nil
}

// getKeys is tls.Config.GetEncryptedClientHelloKeys.
func (e *echKeys) getKeys(*tls.ClientHelloInfo) ([]tls.EncryptedClientHelloKey, error) {
	return e.current.Load().keys, nil
}

// configList is the ECHConfigList clients are given now.
func (e *echKeys) configList() []byte { return e.current.Load().list }

// configure makes c accept ECH with the server's keys.
func (e *echKeys) configure(c *tls.Config) {
	if e != nil && c != nil {
		c.GetEncryptedClientHelloKeys = e.getKeys
	}
}

// maintain rotates the ring when its current key is ECHRotate old: the
// new key is put in use once it is on disk, so that a restart finds
// the keys clients were given.
func (e *echKeys) maintain(now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.current.Load()
	if e.rotate <= 0 || now.Sub(st.ring.Current.Created) < e.rotate {
		return
	}
	ring, err := st.ring.Rotate(now)
	if err == nil {
		err = writeECHRing(e.file, ring)
	}
	if err != nil {
		e.log.Warn("rotating the ECH key failed; trying again in an hour", "file", e.file, "err", err)
		return
	}
	e.current.Store(newECHState(ring, e.publicName))
	e.log.Info("ECH key rotated; the one before is accepted until the next", "config", e.encodedList())
}

// encodedList is configList in base64, as HTTPS records and
// porta ech-config show it.
func (e *echKeys) encodedList() string { return base64.StdEncoding.EncodeToString(e.configList()) }

// watch runs maintain every maintainEvery until the returned stop is
// called. On a nil echKeys it does nothing.
func (e *echKeys) watch() (stop func()) {
	if e == nil {
		return func() {}
	}
	return every(maintainEvery, e.maintain)
}

// ownRecords is what the DoH handler answers itself: HTTPS records for
// the server's own names while ECH is on, else nothing.
func (s *Server) ownRecords() doh.OwnRecords {
	if s.ech == nil {
		return nil
	}
	s.own = &ownRecords{certs: s.certs, ech: s.ech}
	return s.own
}

// serveECH turns ECH on for https and h3 (nil: no HTTP/3), tells the
// HTTPS records what is served on tcp, and rotates the keys until the
// returned stop is called. Without ECH it does nothing.
func (s *Server) serveECH(https *http.Server, h3 *http3.Server, tcp net.Addr) (stop func()) {
	if s.ech == nil {
		return func() {}
	}
	s.ech.configure(https.TLSConfig)
	if h3 != nil {
		s.ech.configure(h3.TLSConfig)
	}
	port := 0
	if a, ok := tcp.(*net.TCPAddr); ok {
		port = a.Port
	}
	s.own.serving(port, h3 != nil)
	s.log.Info("encrypted client hello", "public-name", s.ech.publicName, "config", s.ech.encodedList())
	return s.ech.watch()
}

// ECHConfigList is the ECHConfigList the server gives clients now (the
// HTTPS records of its DoH carry it); nil without ECH.
func (s *Server) ECHConfigList() []byte {
	if s.ech == nil {
		return nil
	}
	return s.ech.configList()
}
