package h2

import (
	"bufio"
	crand "crypto/rand"
	"encoding/binary"
	"math/rand/v2"

	"golang.org/x/net/http2"
)

// dataWriter writes DATA frames to a connection's buffer, their header by
// hand so that a large payload goes from the caller's slice to TLS
// without another copy (the Framer copies every payload into its own
// buffer first). Both sides' writers have one, used under their write
// lock: its header buffer is its own because one on the stack would
// escape through bufio.Writer (an allocation per frame).
type dataWriter struct {
	hdr  [10]byte
	zero [255]byte // padding
}

// write writes one DATA frame of stream id carrying p, PADDED with pad
// bytes of padding when pad >= 0 (RFC 9113 §6.1; noPad: not padded),
// END_STREAM when end.
func (d *dataWriter) write(bw *bufio.Writer, id uint32, p []byte, pad int, end bool) error {
	h := d.hdr[:9]
	length := len(p)
	var flags http2.Flags
	if end {
		flags |= http2.FlagDataEndStream
	}
	if pad >= 0 {
		flags |= http2.FlagDataPadded
		length += 1 + pad
		h = d.hdr[:10]
		h[9] = byte(pad)
	}
	h[0], h[1], h[2] = byte(length>>16), byte(length>>8), byte(length)
	h[3] = byte(http2.FrameData)
	h[4] = byte(flags)
	binary.BigEndian.PutUint32(h[5:9], id)
	if _, err := bw.Write(h); err != nil {
		return err
	}
	if _, err := bw.Write(p); err != nil {
		return err
	}
	if pad > 0 {
		_, err := bw.Write(d.zero[:pad])
		return err
	}
	return nil
}

// noPad is write's pad for a frame without padding.
const noPad = -1

// padding pads the first DATA frames of a stream, a tunnel's, so that the
// TLS record sizes of what it carries first (a tunneled TLS handshake:
// its hello, certificate and finished messages) do not show through the
// outer TLS: each of the stream's first padFrames writes, within its
// first padBytes of data, goes out in a frame padded by a random 0-255
// bytes. Later frames are not padded, so bulk data costs nothing more.
// Any HTTP/2 receiver drops padding: nothing needs agreeing on (which
// naiveproxy's padding, inside the tunneled bytes, does).
type padding struct {
	on            bool
	frames, bytes int // what is left to pad
}

const (
	padFrames = 8
	padBytes  = 16 << 10
)

// newRand is a ChaCha8 generator seeded from crypto/rand, for padding
// lengths (used under its connection's lock).
func newRand() *rand.ChaCha8 {
	var seed [32]byte
	crand.Read(seed[:])
	return rand.NewChaCha8(seed)
}

func newPadding() padding { return padding{on: true, frames: padFrames, bytes: padBytes} }

// next is the padding for a frame of n bytes, at most room (noPad when
// the frame goes without: past the first frames, or room < 0), drawn
// from rng, and counts the frame.
func (p *padding) next(rng *rand.ChaCha8, n, room int) int {
	if p.frames <= 0 || p.bytes <= 0 || n == 0 || room < 0 {
		return noPad
	}
	p.frames--
	p.bytes -= n
	return min(int(rng.Uint64()%256), room)
}
