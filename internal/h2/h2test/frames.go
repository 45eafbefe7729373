package h2test

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// frames is one end's Framer and HPACK encoder, for both a scripted
// server's Conn and a raw Client.
type frames struct {
	*http2.Framer
	enc *hpack.Encoder
	buf *bytes.Buffer
}

func newFrames(rw io.ReadWriter) frames {
	f := frames{Framer: http2.NewFramer(rw, rw), buf: new(bytes.Buffer)}
	f.Framer.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	f.enc = hpack.NewEncoder(f.buf)
	return f
}

// Block is the HPACK header block of fields, given as name, value pairs,
// encoded with the connection's encoder: send it, or the peer's decoder
// falls out of step.
func (f frames) Block(fields ...string) []byte {
	if len(fields)%2 != 0 {
		panic("h2test: Block wants name, value pairs")
	}
	f.buf.Reset()
	for i := 0; i < len(fields); i += 2 {
		f.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return bytes.Clone(f.buf.Bytes())
}

// Headers sends fields (name, value pairs) on stream id in one HEADERS
// frame, with END_STREAM if end.
func (f frames) Headers(id uint32, end bool, fields ...string) error {
	return f.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: f.Block(fields...), EndStream: end, EndHeaders: true})
}

// HeaderBlock sends block on stream id in a HEADERS frame and as many
// CONTINUATIONs as frameSize asks for.
func (f frames) HeaderBlock(id uint32, end bool, block []byte, frameSize int) error {
	first := block[:min(len(block), frameSize)]
	block = block[len(first):]
	err := f.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: end, EndHeaders: len(block) == 0})
	for err == nil && len(block) > 0 {
		frag := block[:min(len(block), frameSize)]
		block = block[len(frag):]
		err = f.WriteContinuation(id, len(block) == 0, frag)
	}
	return err
}

// Describe writes f down in a line, for transcripts that compare what two
// servers or two clients sent: type, stream, flags and what the frame
// carries (SETTINGS values, a window increment, header fields one per
// line with Date values left out, DATA's length and its first 64 bytes,
// error codes).
func Describe(f http2.Frame) string {
	h := f.Header()
	var b strings.Builder
	fmt.Fprintf(&b, "%v stream=%d flags=%v", h.Type, h.StreamID, h.Flags)
	switch f := f.(type) {
	case *http2.SettingsFrame:
		f.ForeachSetting(func(s http2.Setting) error { fmt.Fprintf(&b, " %v", s); return nil })
	case *http2.WindowUpdateFrame:
		fmt.Fprintf(&b, " +%d", f.Increment)
	case *http2.MetaHeadersFrame:
		for _, hf := range f.Fields {
			v := hf.Value
			if hf.Name == "date" {
				v = "<date>"
			}
			fmt.Fprintf(&b, "\n  %s: %s", hf.Name, v)
		}
	case *http2.DataFrame:
		d := f.Data()
		fmt.Fprintf(&b, " len=%d %q", len(d), d[:min(len(d), 64)])
	case *http2.RSTStreamFrame:
		fmt.Fprintf(&b, " %v", f.ErrCode)
	case *http2.GoAwayFrame:
		fmt.Fprintf(&b, " last=%d %v", f.LastStreamID, f.ErrCode)
	case *http2.PingFrame:
		fmt.Fprintf(&b, " %x", f.Data)
	}
	return b.String()
}
