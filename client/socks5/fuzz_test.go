package socks5

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"testing"
)

// encodeRequest is the client's side of readRequest.
func encodeRequest(q request) []byte {
	b := []byte{5, q.cmd, 0, q.atyp}
	switch q.atyp {
	case atypDomain:
		b = append(append(b, byte(len(q.host))), q.host...)
	default:
		b = append(b, netip.MustParseAddr(q.host).AsSlice()...)
	}
	return append(b, byte(q.port>>8), byte(q.port))
}

func FuzzReadRequest(f *testing.F) {
	f.Add(connectMsg(atypIPv4, []byte{127, 0, 0, 1}, 80)[3:])
	f.Add(connectMsg(atypIPv6, netip.MustParseAddr("::1").AsSlice(), 443)[3:])
	f.Add(connectMsg(atypDomain, []byte("example.com"), 443)[3:])
	f.Add(connectMsg(atypDomain, []byte("10.1.2.3"), 22)[3:])
	f.Add([]byte{5, 3, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{5, 1, 0, 3, 0, 0, 80})
	f.Add([]byte{5, 1, 0, 9})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		q, err := readRequest(r)
		consumed := data[:len(data)-r.Len()]
		if len(consumed) > 4+1+255+2 {
			t.Fatalf("read %d bytes", len(consumed))
		}
		var pe *protocolError
		switch {
		case errors.As(err, &pe):
			switch pe.reply {
			case ReplyGeneralFailure, ReplyCommandNotSupported, ReplyAddressNotSupported:
			default:
				t.Fatalf("reply %#x for %x", pe.reply, consumed)
			}
			return
		case err != nil:
			if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if q.cmd != cmdConnect && q.cmd != cmdAssociate {
			t.Fatalf("accepted command %d", q.cmd)
		}
		if ip, err := netip.ParseAddr(q.host); err != nil && !validName([]byte(q.host)) {
			t.Fatalf("host %q", q.host)
		} else if err == nil && ip.Zone() != "" {
			t.Fatalf("host with a zone %q", q.host)
		}
		again, err := readRequest(bytes.NewReader(encodeRequest(q)))
		if err != nil || again != q {
			t.Fatalf("round trip of %+v: %+v, %v", q, again, err)
		}
		rsv0 := append([]byte(nil), consumed...)
		rsv0[2] = 0 // RSV is ignored
		if q.atyp != atypDomain && !bytes.Equal(encodeRequest(q), rsv0) {
			t.Fatalf("re-encoded %x, read %x", encodeRequest(q), consumed)
		}
	})
}

func FuzzUDPHeader(f *testing.F) {
	f.Add(udpMsg(atypIPv4, []byte{127, 0, 0, 1}, 53, "query"))
	f.Add(udpMsg(atypIPv6, netip.MustParseAddr("::1").AsSlice(), 443, "quic"))
	f.Add(udpMsg(atypDomain, []byte("example.com"), 53, ""))
	f.Add(udpMsg(atypDomain, []byte("10.1.2.3"), 123, "ntp"))
	f.Add([]byte{0, 0, 1, atypIPv4, 127, 0, 0, 1, 0, 53, 'x'})
	f.Add([]byte{0, 0, 0, atypDomain, 0, 0, 53})
	f.Add([]byte{0, 0, 0, 9})
	f.Fuzz(func(t *testing.T, d []byte) {
		dst, data, err := splitUDP(d)
		if err != nil {
			if !errors.Is(err, errUDPHeader) && !errors.Is(err, errUDPFragmented) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if d[2] != 0 || 3+len(dst)+len(data) != len(d) {
			t.Fatalf("split %x into %x and %x", d, dst, data)
		}
		host, port, err := parseAddr(dst)
		if err != nil {
			if dst[0] != atypDomain {
				t.Fatalf("an address refused: %v", err)
			}
			return
		}
		if ip, err := netip.ParseAddr(host); err != nil && !validName([]byte(host)) {
			t.Fatalf("host %q", host)
		} else if err == nil && ip.Zone() != "" {
			t.Fatalf("host with a zone %q", host)
		}
		// A reply's header names the target as it was read, and an
		// address as it was sent.
		hdr := AppendUDPHeader(nil, host, port)
		dst2, data2, err := splitUDP(append(hdr, data...))
		if err != nil {
			t.Fatalf("reply header %x: %v", hdr, err)
		}
		if host2, port2, err := parseAddr(dst2); err != nil || host2 != host || port2 != port || !bytes.Equal(data2, data) {
			t.Fatalf("round trip of %q %d: %q %d, %v", host, port, host2, port2, err)
		}
		if dst[0] != atypDomain && !bytes.Equal(hdr[3:], dst) {
			t.Fatalf("re-encoded %x, read %x", hdr[3:], dst)
		}
		// The requests' parser reads the same address.
		q, err := readRequest(bytes.NewReader(append([]byte{5, cmdAssociate, 0}, dst...)))
		if err != nil || q.host != host || q.port != port {
			t.Fatalf("as a request: %+v, %v; want %q %d", q, err, host, port)
		}
	})
}

func encodeUserPass(user, pass string) []byte {
	b := append([]byte{1, byte(len(user))}, user...)
	return append(append(b, byte(len(pass))), pass...)
}

func FuzzReadUserPass(f *testing.F) {
	f.Add(encodeUserPass("alice", "s3cret"))
	f.Add(encodeUserPass("", ""))
	f.Add([]byte{5, 1, 'a'})
	f.Add([]byte{1, 255})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		user, pass, err := readUserPass(r)
		consumed := data[:len(data)-r.Len()]
		if err != nil {
			if !errors.Is(err, errAuthVersion) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if !bytes.Equal(encodeUserPass(user, pass), consumed) {
			t.Fatalf("re-encoded %x, read %x", encodeUserPass(user, pass), consumed)
		}
	})
}
