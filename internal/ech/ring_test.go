package ech

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"github.com/porta443/porta/internal/testenv"
	"github.com/quic-go/quic-go"
)

func TestRingPEM(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r, err := NewRing(now)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := r.Rotate(now.Add(24 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if r2.Previous != r.Current || r2.Current.ID == r.Current.ID || !r2.Current.Created.Equal(now.Add(24*time.Hour)) {
		t.Fatalf("rotated: %+v from %+v", r2, r)
	}
	for _, ring := range []Ring{r, r2} {
		data, err := ring.MarshalPEM()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParsePEM(data)
		if err != nil {
			t.Fatal(err)
		}
		if !sameKeys(back, ring) {
			t.Errorf("PEM round trip changed the ring:\n%s", data)
		}
	}
	one, _ := r.MarshalPEM()
	two, _ := r2.MarshalPEM()
	for name, data := range map[string][]byte{
		"empty":        nil,
		"three keys":   append(append([]byte{}, two...), one...),
		"same ids":     append(append([]byte{}, one...), one...),
		"no id":        bytes.Replace(one, []byte("Config-Id"), []byte("Config-Ix"), 1),
		"bad created":  bytes.Replace(one, []byte("Created: 2026"), []byte("Created: 20x6"), 1),
		"certificate":  bytes.ReplaceAll(one, []byte("PRIVATE KEY"), []byte("CERTIFICATE")),
		"not a key":    bytes.Replace(one, []byte("\n\n"), []byte("\n\nAAAA"), 1),
		"plain garble": []byte("hello"),
	} {
		if _, err := ParsePEM(data); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func sameKeys(a, b Ring) bool {
	if (a.Previous == nil) != (b.Previous == nil) {
		return false
	}
	eq := func(x, y *Key) bool {
		return x.ID == y.ID && x.Created.Equal(y.Created) && x.Private.Equal(y.Private)
	}
	return eq(a.Current, b.Current) && (a.Previous == nil || eq(a.Previous, b.Previous))
}

// TestHandshakes: crypto/tls, over TCP and over quic-go, accepts ECH with
// the ring's configs, with either suite, and with the previous key's
// config; a config of another key is rejected with the ring's configs to
// retry with, current first.
func TestHandshakes(t *testing.T) {
	cert := testenv.NewCert(t)
	r, _ := NewRing(time.Now())
	r, _ = r.Rotate(time.Now())
	stranger, _ := NewRing(time.Now())
	const public = "public.test"
	// A config that offers ChaCha20-Poly1305 alone makes a client use it
	// (crypto/tls takes a config's first suite it has); the server holds
	// it too, not as a retry config.
	chacha := r.Current.Config(public)
	chacha.Suites = []Suite{{KDFHKDFSHA256, AEADChaCha20Poly}}
	keys := append(r.TLSKeys(public), tls.EncryptedClientHelloKey{Config: chacha.Marshal(), PrivateKey: r.Current.Private.Bytes()})
	serverTLS := &tls.Config{
		Certificates: []tls.Certificate{cert.TLS},
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{"test"},
		GetEncryptedClientHelloKeys: func(*tls.ClientHelloInfo) ([]tls.EncryptedClientHelloKey, error) {
			return keys, nil
		},
	}
	addr := testenv.HandshakeServer(t, serverTLS)
	dials := map[string]func(*tls.Config) (tls.ConnectionState, error){
		"tcp":  func(c *tls.Config) (tls.ConnectionState, error) { return dialTCP(addr, c) },
		"quic": func(c *tls.Config) (tls.ConnectionState, error) { return dialQUIC(addr, c) },
	}
	for transport, dial := range dials {
		for name, list := range map[string][]byte{
			"current":           r.ConfigList(public),
			"previous":          List(r.Previous.Config(public).Marshal()),
			"ChaCha20-Poly1305": List(chacha.Marshal()),
		} {
			cs, err := dial(clientTLS(cert.ClientTLS("test"), list))
			if err != nil || !cs.ECHAccepted || cs.ServerName != "localhost" {
				t.Errorf("%s, %s config: accepted %v, %v", transport, name, cs.ECHAccepted, err)
			}
		}
		_, err := dial(clientTLS(cert.ClientTLS("test"), stranger.ConfigList(public)))
		rej, ok := errors.AsType[*tls.ECHRejectionError](err)
		want := List(r.Current.Config(public).Marshal(), r.Previous.Config(public).Marshal())
		if !ok || !bytes.Equal(rej.RetryConfigList, want) {
			t.Errorf("%s, unknown config: %v, want a rejection with the ring's configs", transport, err)
		}
	}
}

// clientTLS offers list, and takes any certificate for the public name
// when ECH is rejected (the test's certificate covers only localhost).
func clientTLS(c *tls.Config, list []byte) *tls.Config {
	c.EncryptedClientHelloConfigList = list
	c.EncryptedClientHelloRejectionVerify = func(tls.ConnectionState) error { return nil }
	return c
}

func dialTCP(addr string, c *tls.Config) (tls.ConnectionState, error) {
	conn, err := tls.Dial("tcp", addr, c)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	return conn.ConnectionState(), nil
}

func dialQUIC(addr string, c *tls.Config) (tls.ConnectionState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, addr, c, nil)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.CloseWithError(0, "")
	return conn.ConnectionState().TLS, nil
}
