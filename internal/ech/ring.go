package ech

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Key is an X25519 HPKE key pair and the config that publishes it.
type Key struct {
	ID      uint8
	Private *ecdh.PrivateKey
	Created time.Time
}

// NewKey makes a key with config id id.
func NewKey(id uint8, now time.Time) (*Key, error) {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return &Key{ID: id, Private: priv, Created: now}, nil
}

// Config is the key's config for publicName.
func (k *Key) Config(publicName string) Config {
	return Config{
		ID:         k.ID,
		KEM:        KEMX25519,
		PublicKey:  k.Private.PublicKey().Bytes(),
		Suites:     suites,
		PublicName: publicName,
	}
}

// Ring is a server's keys: Current, which its published config list
// carries, and Previous (nil at first), the one Current replaced, still
// accepted so that clients holding its config keep working until they
// learn the new one.
type Ring struct {
	Current, Previous *Key
}

// NewRing is a ring of one new key.
func NewRing(now time.Time) (Ring, error) {
	k, err := NewKey(randomID(0, false), now)
	return Ring{Current: k}, err
}

// Rotate returns the ring with a new current key, whose config id differs
// from the one it replaces, and that one as the previous.
func (r Ring) Rotate(now time.Time) (Ring, error) {
	k, err := NewKey(randomID(r.Current.ID, true), now)
	if err != nil {
		return r, err
	}
	return Ring{Current: k, Previous: r.Current}, nil
}

// randomID is a random config id, other than not if avoid is set.
func randomID(not uint8, avoid bool) uint8 {
	var b [1]byte
	for {
		rand.Read(b[:])
		if !avoid || b[0] != not {
			return b[0]
		}
	}
}

// keys are the ring's keys, Current first.
func (r Ring) keys() []*Key {
	if r.Previous == nil {
		return []*Key{r.Current}
	}
	return []*Key{r.Current, r.Previous}
}

// ConfigList is the ECHConfigList that clients are given: the current
// key's config for publicName.
func (r Ring) ConfigList(publicName string) []byte {
	return List(r.Current.Config(publicName).Marshal())
}

// TLSKeys are the ring's keys as crypto/tls's server takes them, Current
// first. Both are sent as retry configs to a client whose ECH the server
// could not decrypt; a client takes the first one it can use.
func (r Ring) TLSKeys(publicName string) []tls.EncryptedClientHelloKey {
	var out []tls.EncryptedClientHelloKey
	for _, k := range r.keys() {
		out = append(out, tls.EncryptedClientHelloKey{
			Config:      k.Config(publicName).Marshal(),
			PrivateKey:  k.Private.Bytes(),
			SendAsRetry: true,
		})
	}
	return out
}

// pemType is the PEM block type of a ring's keys: PKCS #8, as
// x509.MarshalPKCS8PrivateKey writes X25519 keys.
const pemType = "PRIVATE KEY"

// MarshalPEM writes the ring as PEM blocks, Current first, each with its
// config id and the time it was made in headers.
func (r Ring) MarshalPEM() ([]byte, error) {
	var out []byte
	for _, k := range r.keys() {
		der, err := x509.MarshalPKCS8PrivateKey(k.Private)
		if err != nil {
			return nil, err
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{
			Type: pemType,
			Headers: map[string]string{
				"Config-Id": strconv.Itoa(int(k.ID)),
				"Created":   k.Created.UTC().Format(time.RFC3339),
			},
			Bytes: der,
		})...)
	}
	return out, nil
}

// ParsePEM reads what MarshalPEM wrote: one or two X25519 keys.
func ParsePEM(data []byte) (Ring, error) {
	var keys []*Key
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		k, err := parseKeyBlock(block)
		if err != nil {
			return Ring{}, fmt.Errorf("key %d: %w", len(keys)+1, err)
		}
		keys = append(keys, k)
	}
	switch len(keys) {
	case 1:
		return Ring{Current: keys[0]}, nil
	case 2:
		if keys[0].ID == keys[1].ID {
			return Ring{}, errors.New("both keys have config id " + strconv.Itoa(int(keys[0].ID)))
		}
		return Ring{Current: keys[0], Previous: keys[1]}, nil
	}
	return Ring{}, fmt.Errorf("want 1 or 2 PEM keys, found %d", len(keys))
}

func parseKeyBlock(b *pem.Block) (*Key, error) {
	if b.Type != pemType {
		return nil, fmt.Errorf("PEM block %q, want %q", b.Type, pemType)
	}
	id, err := strconv.ParseUint(b.Headers["Config-Id"], 10, 8)
	if err != nil {
		return nil, fmt.Errorf("Config-Id: %w", err)
	}
	created, err := time.Parse(time.RFC3339, b.Headers["Created"])
	if err != nil {
		return nil, fmt.Errorf("Created: %w", err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	priv, ok := parsed.(*ecdh.PrivateKey)
	if !ok || priv.Curve() != ecdh.X25519() {
		return nil, fmt.Errorf("a %T key, want X25519", parsed)
	}
	return &Key{ID: uint8(id), Private: priv, Created: created}, nil
}
