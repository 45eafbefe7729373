// Package ech makes and reads the configurations of TLS Encrypted Client
// Hello (draft-ietf-tls-esni, version 0xfe0d) for porta: X25519 HPKE keys
// with HKDF-SHA256 and AES-128-GCM or ChaCha20-Poly1305, their ECHConfig
// and ECHConfigList wire forms, and a server's ring of keys (the current
// one and the one before it) in PEM.
//
// crypto/tls does the handshake itself; this package only gives it the
// keys and configs it takes (tls.EncryptedClientHelloKey and
// tls.Config.EncryptedClientHelloConfigList).
package ech

import (
	"crypto/hpke"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/cryptobyte"
)

// Version is the ECHConfig version this package writes, and the only one
// crypto/tls reads: draft-ietf-tls-esni-13 and later.
const Version = 0xfe0d

// HPKE identifiers (RFC 9180 §7) of what this package's configs offer.
const (
	KEMX25519        = 0x0020 // DHKEM(X25519, HKDF-SHA256)
	KDFHKDFSHA256    = 0x0001
	AEADAES128GCM    = 0x0001
	AEADChaCha20Poly = 0x0003
)

// Config is one ECHConfig: what a client needs to encrypt its inner
// ClientHello to a server's key.
type Config struct {
	ID         uint8  // config_id: tells a server's keys apart
	KEM        uint16 // kem_id
	PublicKey  []byte // the KEM's public key in its wire form
	Suites     []Suite
	PublicName string // the name the outer ClientHello carries
	// MaxNameLength is maximum_name_length: 0, for clients to pad names
	// in their own way.
	MaxNameLength uint8
	// Mandatory reports an extension with the high bit set: one that a
	// client must understand, and none does.
	Mandatory bool
}

// Suite is an HPKE symmetric cipher suite: a KDF and an AEAD.
type Suite struct{ KDF, AEAD uint16 }

// suites are what porta offers: AES-128-GCM where the CPU has AES
// instructions, ChaCha20-Poly1305 where it has not; the client picks.
var suites = []Suite{{KDFHKDFSHA256, AEADAES128GCM}, {KDFHKDFSHA256, AEADChaCha20Poly}}

// Marshal returns the ECHConfig: version, length, and the contents.
func (c Config) Marshal() []byte {
	var b cryptobyte.Builder
	b.AddUint16(Version)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint8(c.ID)
		b.AddUint16(c.KEM)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(c.PublicKey) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, s := range c.Suites {
				b.AddUint16(s.KDF)
				b.AddUint16(s.AEAD)
			}
		})
		b.AddUint8(c.MaxNameLength)
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(c.PublicName)) })
		b.AddUint16(0) // no extensions
	})
	return b.BytesOrPanic()
}

// List is the ECHConfigList of configs, each a Marshal'd ECHConfig.
func List(configs ...[]byte) []byte {
	var b cryptobyte.Builder
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, c := range configs {
			b.AddBytes(c)
		}
	})
	return b.BytesOrPanic()
}

var errMalformed = errors.New("ech: malformed ECHConfigList")

// ParseList reads an ECHConfigList. Configs of other versions are
// skipped, as clients skip them; a list that is malformed, or that has
// none of version 0xfe0d, is an error.
func ParseList(list []byte) ([]Config, error) {
	s := cryptobyte.String(list)
	var body cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&body) || !s.Empty() || body.Empty() {
		return nil, errMalformed
	}
	var out []Config
	for !body.Empty() {
		var version uint16
		var contents cryptobyte.String
		if !body.ReadUint16(&version) || !body.ReadUint16LengthPrefixed(&contents) {
			return nil, errMalformed
		}
		if version != Version {
			continue
		}
		c, err := parseContents(contents)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("ech: no config of version %#04x in the list", Version)
	}
	return out, nil
}

func parseContents(s cryptobyte.String) (Config, error) {
	var c Config
	var pub, suiteBytes, name, exts cryptobyte.String
	if !s.ReadUint8(&c.ID) || !s.ReadUint16(&c.KEM) ||
		!s.ReadUint16LengthPrefixed(&pub) || !s.ReadUint16LengthPrefixed(&suiteBytes) ||
		!s.ReadUint8(&c.MaxNameLength) || !s.ReadUint8LengthPrefixed(&name) ||
		!s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		return Config{}, errMalformed
	}
	c.PublicKey, c.PublicName = []byte(pub), string(name)
	for !suiteBytes.Empty() {
		var st Suite
		if !suiteBytes.ReadUint16(&st.KDF) || !suiteBytes.ReadUint16(&st.AEAD) {
			return Config{}, errMalformed
		}
		c.Suites = append(c.Suites, st)
	}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return Config{}, errMalformed
		}
		c.Mandatory = c.Mandatory || typ&0x8000 != 0
	}
	return c, nil
}

// Usable reports whether a client on crypto/tls can use c, as it decides
// when it picks a config from a list: a valid public name, no mandatory
// extension, a KEM and key it has, and one suite it has.
func (c Config) Usable() bool {
	if c.Mandatory || !ValidPublicName(c.PublicName) {
		return false
	}
	kem, err := hpke.NewKEM(c.KEM)
	if err != nil {
		return false
	}
	if _, err := kem.NewPublicKey(c.PublicKey); err != nil {
		return false
	}
	for _, s := range c.Suites {
		_, errKDF := hpke.NewKDF(s.KDF)
		_, errAEAD := hpke.NewAEAD(s.AEAD)
		if errKDF == nil && errAEAD == nil {
			return true
		}
	}
	return false
}

// CheckList reports whether list is an ECHConfigList that a client on
// crypto/tls can use: well formed, with at least one usable config.
func CheckList(list []byte) error {
	configs, err := ParseList(list)
	if err != nil {
		return err
	}
	for _, c := range configs {
		if c.Usable() {
			return nil
		}
	}
	return errors.New("ech: no config in the list that crypto/tls can use")
}

// ValidPublicName reports whether name can be a config's public name
// (draft-ietf-tls-esni §4): two labels or more, as crypto/tls wants, each
// of 1 to 63 letters, digits and inner hyphens, at most 253 bytes in all,
// no trailing dot, and a last label that is not all digits (which would
// make it an IPv4 address).
func ValidPublicName(name string) bool {
	labels := strings.Split(name, ".")
	if len(name) > 253 || len(labels) < 2 {
		return false
	}
	for _, label := range labels {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := range len(label) {
			ch := label[i]
			if !('0' <= ch && ch <= '9' || 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || ch == '-') {
				return false
			}
		}
	}
	return strings.Trim(labels[len(labels)-1], "0123456789") != ""
}
