package testenv

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/crypto/cryptobyte"
)

// Hello is what a ClientHello shows: the server name it carries in the
// clear, and its extensions' types.
type Hello struct {
	ServerName string
	Extensions []uint16
}

// Has reports whether the hello carries extension typ.
func (h Hello) Has(typ uint16) bool { return slices.Contains(h.Extensions, typ) }

// HelloFromTLS finds the ClientHello in a TLS connection's first flight:
// handshake records, whose fragments it joins.
func HelloFromTLS(stream []byte) (Hello, []byte, error) {
	var hs []byte
	s := cryptobyte.String(stream)
	for !s.Empty() {
		var typ uint8
		var version uint16
		var fragment cryptobyte.String
		if !s.ReadUint8(&typ) || !s.ReadUint16(&version) || !s.ReadUint16LengthPrefixed(&fragment) {
			return Hello{}, nil, errors.New("a short TLS record")
		}
		if typ != 22 {
			return Hello{}, nil, fmt.Errorf("a TLS record of type %d before the ClientHello", typ)
		}
		hs = append(hs, fragment...)
	}
	return parseHello(hs)
}

// HelloFromQUIC finds the ClientHello in a QUIC client's first flight:
// the CRYPTO frames of its Initial packets, decrypted with the keys anyone
// can derive from the packets themselves (RFC 9001 §5.2), for QUIC
// version 1. Packets of other types that follow an Initial one in a
// datagram are left alone.
func HelloFromQUIC(datagrams [][]byte) (Hello, []byte, error) {
	var crypto, odcid []byte
	var have []bool
	for _, d := range datagrams {
		for len(d) > 0 && d[0]&0xf0 == 0xc0 { // Initial; zeros may pad the datagram
			payload, rest, err := openInitial(d, &odcid)
			if err != nil {
				return Hello{}, nil, err
			}
			if err := cryptoFrames(payload, &crypto, &have); err != nil {
				return Hello{}, nil, err
			}
			d = rest
		}
	}
	if slices.Contains(have, false) {
		return Hello{}, nil, errors.New("a gap in the CRYPTO stream")
	}
	return parseHello(crypto)
}

// ParseHello reads a ClientHello handshake message, as HelloFromQUIC
// returns it.
func ParseHello(raw []byte) (Hello, error) {
	h, _, err := parseHello(raw)
	return h, err
}

// parseHello reads a handshake message that must be a ClientHello.
func parseHello(hs []byte) (Hello, []byte, error) {
	s := cryptobyte.String(hs)
	var typ uint8
	var body cryptobyte.String
	if !s.ReadUint8(&typ) || typ != 1 || !s.ReadUint24LengthPrefixed(&body) {
		return Hello{}, nil, errors.New("not a whole ClientHello")
	}
	raw := hs[:len(hs)-len(s)]
	var version uint16
	var random, session, suites, compression, exts cryptobyte.String
	if !body.ReadUint16(&version) || !body.ReadBytes((*[]byte)(&random), 32) ||
		!body.ReadUint8LengthPrefixed(&session) || !body.ReadUint16LengthPrefixed(&suites) ||
		!body.ReadUint8LengthPrefixed(&compression) || !body.ReadUint16LengthPrefixed(&exts) {
		return Hello{}, nil, errors.New("a malformed ClientHello")
	}
	var h Hello
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return Hello{}, nil, errors.New("a malformed extension")
		}
		h.Extensions = append(h.Extensions, typ)
		var list, name cryptobyte.String
		var nameType uint8
		if typ == 0 && data.ReadUint16LengthPrefixed(&list) && list.ReadUint8(&nameType) && list.ReadUint16LengthPrefixed(&name) {
			h.ServerName = string(name)
		}
	}
	return h, raw, nil
}

// quicV1Salt is QUIC version 1's initial salt (RFC 9001 §5.2).
var quicV1Salt = []byte{0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a}

// openInitial removes the protection of the client Initial packet at the
// start of d and returns its payload and what follows it in d. The keys
// come from the connection ID the client's first Initial packet was sent
// to, *odcid, which it sets when it is nil: later ones may go to another.
func openInitial(d []byte, odcid *[]byte) (payload, rest []byte, err error) {
	s := cryptobyte.String(d)
	var first uint8
	var version uint32
	var dcid, scid, token cryptobyte.String
	if !s.ReadUint8(&first) || first&0xf0 != 0xc0 || !s.ReadUint32(&version) {
		return nil, nil, errors.New("not a QUIC Initial packet")
	}
	if version != 1 {
		return nil, nil, fmt.Errorf("QUIC version %#x, want 1", version)
	}
	var tokenLen, length uint64
	if !s.ReadUint8LengthPrefixed(&dcid) || !s.ReadUint8LengthPrefixed(&scid) ||
		!readVarint(&s, &tokenLen) || !s.ReadBytes((*[]byte)(&token), int(tokenLen)) || !readVarint(&s, &length) {
		return nil, nil, errors.New("a malformed Initial header")
	}
	pnOff := len(d) - len(s)
	end := pnOff + int(length)
	if length < 20 || end > len(d) {
		return nil, nil, errors.New("a short Initial packet")
	}
	if *odcid == nil {
		*odcid = append([]byte{}, dcid...)
	}
	key, iv, hp := initialKeys(*odcid)
	block, _ := aes.NewCipher(hp)
	mask := make([]byte, 16)
	block.Encrypt(mask, d[pnOff+4:pnOff+20])
	header := append([]byte(nil), d[:pnOff+4]...)
	header[0] ^= mask[0] & 0x0f
	pnLen := int(header[0]&0x03) + 1
	header = header[:pnOff+pnLen]
	var pn uint64
	for i := range pnLen {
		header[pnOff+i] ^= mask[1+i]
		pn = pn<<8 | uint64(header[pnOff+i])
	}
	nonce := append([]byte(nil), iv...)
	for i := range 8 {
		nonce[len(nonce)-1-i] ^= byte(pn >> (8 * i))
	}
	aesKey, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(aesKey)
	payload, err = aead.Open(nil, nonce, d[pnOff+pnLen:end], header)
	if err != nil {
		return nil, nil, fmt.Errorf("opening an Initial packet: %w", err)
	}
	return payload, d[end:], nil
}

// initialKeys are the client's Initial key, IV and header protection key
// for the connection ID dcid.
func initialKeys(dcid []byte) (key, iv, hp []byte) {
	initial, _ := hkdf.Extract(sha256.New, dcid, quicV1Salt)
	client := expandLabel(initial, "client in", 32)
	return expandLabel(client, "quic key", 16), expandLabel(client, "quic iv", 12), expandLabel(client, "quic hp", 16)
}

// expandLabel is TLS 1.3's HKDF-Expand-Label with an empty context.
func expandLabel(secret []byte, label string, n int) []byte {
	info := binary.BigEndian.AppendUint16(nil, uint16(n))
	info = append(info, byte(len("tls13 ")+len(label)))
	info = append(info, "tls13 "+label...)
	info = append(info, 0)
	out, _ := hkdf.Expand(sha256.New, secret, string(info), n)
	return out
}

// cryptoFrames puts the CRYPTO frames of an Initial payload in place in
// stream, marking what arrived in have; PADDING, PING, ACK and
// CONNECTION_CLOSE frames are skipped, and any other frame is an error.
func cryptoFrames(payload []byte, stream *[]byte, have *[]bool) error {
	s := cryptobyte.String(payload)
	for !s.Empty() {
		var typ uint64
		if !readVarint(&s, &typ) {
			return errors.New("a malformed frame")
		}
		switch typ {
		case 0x00, 0x01: // PADDING, PING
		case 0x02, 0x03: // ACK
			var largest, delay, count, first uint64
			if !readVarint(&s, &largest) || !readVarint(&s, &delay) || !readVarint(&s, &count) || !readVarint(&s, &first) {
				return errors.New("a malformed ACK frame")
			}
			n := 2 * count
			if typ == 0x03 {
				n += 3
			}
			for range n {
				var v uint64
				if !readVarint(&s, &v) {
					return errors.New("a malformed ACK frame")
				}
			}
		case 0x06: // CRYPTO
			var off, n uint64
			var data []byte
			if !readVarint(&s, &off) || !readVarint(&s, &n) || !s.ReadBytes(&data, int(n)) || off+n > 1<<16 {
				return errors.New("a malformed CRYPTO frame")
			}
			if end := int(off + n); end > len(*stream) {
				*stream = append(*stream, make([]byte, end-len(*stream))...)
				*have = append(*have, make([]bool, end-len(*have))...)
			}
			copy((*stream)[off:], data)
			for i := range int(n) {
				(*have)[int(off)+i] = true
			}
		case 0x1c: // CONNECTION_CLOSE: a client that closes before it dropped its Initial keys
			var code, frame, n uint64
			var reason []byte
			if !readVarint(&s, &code) || !readVarint(&s, &frame) || !readVarint(&s, &n) || !s.ReadBytes(&reason, int(n)) {
				return errors.New("a malformed CONNECTION_CLOSE frame")
			}
		default:
			return fmt.Errorf("frame type %#x in an Initial packet", typ)
		}
	}
	return nil
}

// readVarint reads a QUIC variable-length integer (RFC 9000 §16).
func readVarint(s *cryptobyte.String, v *uint64) bool {
	var first uint8
	if !s.ReadUint8(&first) {
		return false
	}
	n := 1 << (first >> 6)
	*v = uint64(first & 0x3f)
	for range n - 1 {
		var b uint8
		if !s.ReadUint8(&b) {
			return false
		}
		*v = *v<<8 | uint64(b)
	}
	return true
}
