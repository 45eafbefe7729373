package masque

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/quic-go/quic-go/quicvarint"
)

func TestPathRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		host string
		port uint16
		path string
	}{
		{"192.0.2.6", 443, "/.well-known/masque/udp/192.0.2.6/443/"},
		{"2001:db8::42", 53, "/.well-known/masque/udp/2001%3Adb8%3A%3A42/53/"},
		{"example.org", 65535, "/.well-known/masque/udp/example.org/65535/"},
	} {
		if got := Path(tc.host, tc.port); got != tc.path {
			t.Errorf("Path(%q, %d) = %q, want %q", tc.host, tc.port, got, tc.path)
		}
		host, port, err := ParsePath(tc.path)
		if err != nil || host != tc.host || port != tc.port {
			t.Errorf("ParsePath(%q) = %q, %d, %v", tc.path, host, port, err)
		}
	}
	// Clients that leave the colons as they are are understood too.
	host, port, err := ParsePath("/.well-known/masque/udp/2001:db8::42/443/")
	if err != nil || host != "2001:db8::42" || port != 443 {
		t.Errorf("encoded IPv6: %q, %d, %v", host, port, err)
	}
	if target, err := Target("/.well-known/masque/udp/2001%3Adb8%3A%3A42/443"); err != nil || target != "[2001:db8::42]:443" {
		t.Errorf("Target without the last slash = %q, %v", target, err)
	}
}

func TestParsePathRefuses(t *testing.T) {
	for _, p := range []string{
		"", "/", "/.well-known/masque/udp/", "/.well-known/masque/udp/host/",
		"/.well-known/masque/udp//53/", "/.well-known/masque/udp/host/0/",
		"/.well-known/masque/udp/host/65536/", "/.well-known/masque/udp/host/+53/",
		"/.well-known/masque/udp/host/53/extra/", "/.well-known/masque/udp/a%2Fb/53/",
		"/.well-known/masque/udp/a%zz/53/", "/.well-known/masque/ip/host/53/",
		"/other/host/53/", "/.well-known/masque/udp/host/fifty/",
	} {
		if h, port, err := ParsePath(p); !errors.Is(err, ErrPath) {
			t.Errorf("ParsePath(%q) = %q, %d, %v; want ErrPath", p, h, port, err)
		}
	}
}

func TestCapsulesInStep(t *testing.T) {
	var b []byte
	b = AppendDatagramCapsule(b, []byte("one"))
	b = AppendCapsule(b, 0x2a, []byte("an unknown capsule, skipped"))
	b = AppendCapsule(b, CapsuleDatagram, append([]byte{0x01}, "ctx 1"...))
	b = AppendDatagramCapsule(b, bytes.Repeat([]byte("x"), 100)) // over the limit
	b = AppendDatagramCapsule(b, nil)                            // an empty UDP payload is a datagram
	b = AppendDatagramCapsule(b, []byte("two"))
	cr := NewCapsuleReader(bytes.NewReader(b), 10)
	var got []string
	for {
		p, err := cr.NextDatagram()
		if errors.Is(err, ErrCapsuleTooLarge) {
			got = append(got, "too large")
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(p))
	}
	if want := "one|too large||two"; strings.Join(got, "|") != want {
		t.Errorf("read %q, want %q", strings.Join(got, "|"), want)
	}
}

func TestCapsuleCutShort(t *testing.T) {
	whole := AppendDatagramCapsule(nil, []byte("payload"))
	for n := 1; n < len(whole); n++ {
		_, err := NewCapsuleReader(bytes.NewReader(whole[:n]), 100).NextDatagram()
		if n > 1 && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("cut after %d bytes: %v, want ErrUnexpectedEOF", n, err)
		}
		if err == nil {
			t.Errorf("cut after %d bytes: no error", n)
		}
	}
}

func TestHugeUnknownCapsuleAllocatesNothing(t *testing.T) {
	b := quicvarint.Append(nil, 0x3f)
	b = quicvarint.Append(b, quicvarint.Max) // claims 4 EiB, then ends
	cr := NewCapsuleReader(bytes.NewReader(b), 1500)
	if _, err := cr.NextDatagram(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v", err)
	}
	if cap(cr.buf) != 0 {
		t.Errorf("buffer of %d bytes for a capsule that was skipped", cap(cr.buf))
	}
}

func FuzzCapsuleReader(f *testing.F) {
	f.Add(AppendDatagramCapsule(AppendCapsule(nil, 7, []byte("x")), []byte("hello")))
	f.Add([]byte{0x00, 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		cr := NewCapsuleReader(bytes.NewReader(b), 64)
		for range 1000 {
			p, err := cr.NextDatagram()
			if errors.Is(err, ErrCapsuleTooLarge) {
				continue
			}
			if err != nil {
				return
			}
			if len(p) > 64 {
				t.Fatalf("payload of %d bytes past the limit", len(p))
			}
		}
	})
}
