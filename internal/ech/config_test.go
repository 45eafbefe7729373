package ech

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// TestConfigWireForm: an ECHConfig is laid out as draft-ietf-tls-esni §4
// says, byte by byte.
func TestConfigWireForm(t *testing.T) {
	pub := bytes.Repeat([]byte{0xAB}, 32)
	c := Config{ID: 7, KEM: KEMX25519, PublicKey: pub, Suites: suites, PublicName: "public.test"}
	want := "fe0d" + "003e" + // version, length of what follows (62)
		"07" + "0020" + "0020" + strings.Repeat("ab", 32) + // config_id, kem_id, public_key
		"0008" + "00010001" + "00010003" + // HKDF-SHA256 with AES-128-GCM, with ChaCha20-Poly1305
		"00" + "0b" + hex.EncodeToString([]byte("public.test")) + // maximum_name_length, public_name
		"0000" // no extensions
	if got := hex.EncodeToString(c.Marshal()); got != want {
		t.Fatalf("ECHConfig\n got %s\nwant %s", got, want)
	}
	list := List(c.Marshal())
	if hex.EncodeToString(list[:2]) != "0042" || !bytes.Equal(list[2:], c.Marshal()) {
		t.Fatalf("ECHConfigList %x", list)
	}
	parsed, err := ParseList(list)
	if err != nil || len(parsed) != 1 || !bytes.Equal(parsed[0].Marshal(), c.Marshal()) {
		t.Fatalf("ParseList: %+v, %v", parsed, err)
	}
}

// TestCheckList: lists a crypto/tls client could not use are refused
// with a reason; others of other versions are skipped.
func TestCheckList(t *testing.T) {
	k, err := NewKey(1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	good := k.Config("public.test")
	with := func(f func(*Config)) []byte {
		c := good
		f(&c)
		return List(c.Marshal())
	}
	otherVersion := []byte{0xfe, 0x0a, 0x00, 0x02, 0xAA, 0xBB}
	mandatory := good.Marshal()
	mandatory = append(mandatory[:len(mandatory)-2], 0x00, 0x04, 0xff, 0x01, 0x00, 0x00) // one extension, 0xff01, empty
	mandatory[3] += 4
	for _, tc := range []struct {
		name string
		list []byte
		ok   bool
	}{
		{"good", List(good.Marshal()), true},
		{"after another version", List(otherVersion, good.Marshal()), true},
		{"only another version", List(otherVersion), false},
		{"empty", []byte{0, 0}, false},
		{"truncated", List(good.Marshal())[:20], false},
		{"trailing bytes", append(List(good.Marshal()), 0), false},
		{"unknown KEM", with(func(c *Config) { c.KEM = 0x7777 }), false},
		{"short key", with(func(c *Config) { c.PublicKey = c.PublicKey[:31] }), false},
		{"no suite known", with(func(c *Config) { c.Suites = []Suite{{KDFHKDFSHA256, 0x7777}} }), false},
		{"one suite known", with(func(c *Config) { c.Suites = []Suite{{KDFHKDFSHA256, 0x7777}, {KDFHKDFSHA256, AEADChaCha20Poly}} }), true},
		{"one-label name", with(func(c *Config) { c.PublicName = "localhost" }), false},
		{"mandatory extension", List(mandatory), false},
	} {
		if err := CheckList(tc.list); (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

func TestValidPublicName(t *testing.T) {
	for name, want := range map[string]bool{
		"public.test": true, "a.b": true, "cdn-1.example.org": true, "x.1a": true,
		"": false, "localhost": false, "public.test.": false, ".test": false, "a..b": false,
		"-a.test": false, "a-.test": false, "a_b.test": false, "10.0.0.1": false, "a.123": false,
		strings.Repeat("a", 64) + ".test": false, strings.Repeat("a.", 127) + "a": false,
	} {
		if got := ValidPublicName(name); got != want {
			t.Errorf("ValidPublicName(%q) = %v, want %v", name, got, want)
		}
	}
}

func FuzzParseList(f *testing.F) {
	k, _ := NewKey(9, time.Now())
	f.Add(List(k.Config("public.test").Marshal()))
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, list []byte) {
		configs, err := ParseList(list)
		if err != nil {
			return
		}
		// What parses writes back as it was read, for version 0xfe0d.
		for _, c := range configs {
			again, err := ParseList(List(c.Marshal()))
			if err != nil || len(again) != 1 || !bytes.Equal(again[0].Marshal(), c.Marshal()) {
				t.Fatalf("round trip of %+v: %v", c, err)
			}
		}
	})
}
