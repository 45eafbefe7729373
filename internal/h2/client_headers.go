package h2

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

const (
	// clientMaxHeaderFrames bounds the frames of one header block, a
	// HEADERS and its CONTINUATIONs: far more than any encoder splits a
	// block into, and a flood of empty CONTINUATIONs ends there.
	clientMaxHeaderFrames = 1024
	// clientMaxHeaderBytes bounds a header block as it comes, compressed.
	clientMaxHeaderBytes = 2 * clientMaxHeaderList
)

// readHeaders reads a HEADERS frame and its CONTINUATIONs and decodes the
// header block, which must be decoded whole whatever becomes of the
// stream: the HPACK state is the connection's. A block that cannot be
// decoded, or that floods, ends the connection.
func (c *ClientConn) readHeaders(fh http2.FrameHeader) error {
	f, err := c.fr.ReadFrameForHeader(fh)
	if se, ok := errors.AsType[http2.StreamError](err); ok {
		// The block went unread with the frame: the HPACK state is lost.
		return connErr(http2.ErrCodeProtocol, "an ill-formed HEADERS frame: %v", se)
	}
	if err != nil {
		return c.framerErr(err)
	}
	hf := f.(*http2.HeadersFrame)
	id, end := hf.StreamID, hf.StreamEnded()
	frag, ended := hf.HeaderBlockFragment(), hf.HeadersEnded()
	c.block.reset()
	size := 0
	for frames := 1; ; frames++ {
		if frames > clientMaxHeaderFrames {
			return connErr(http2.ErrCodeEnhanceYourCalm, "a header block in more than %d frames (a CONTINUATION flood)", clientMaxHeaderFrames)
		}
		if size += len(frag); size > clientMaxHeaderBytes {
			return connErr(http2.ErrCodeProtocol, "a header block of more than %d bytes", clientMaxHeaderBytes)
		}
		if _, err := c.hdec.Write(frag); err != nil {
			return connErr(http2.ErrCodeCompression, "HPACK: %v", err)
		}
		if ended {
			break
		}
		// The Framer lets only a CONTINUATION of this stream through.
		f, err := c.fr.ReadFrame()
		if err != nil {
			return c.framerErr(err)
		}
		c.lastFrame.Store(time.Now().UnixNano())
		cf := f.(*http2.ContinuationFrame)
		frag, ended = cf.HeaderBlockFragment(), cf.HeadersEnded()
	}
	if err := c.hdec.Close(); err != nil {
		return connErr(http2.ErrCodeCompression, "HPACK: %v", err)
	}
	return c.onHeaders(id, end)
}

// clientHeaderBlock is the header block being decoded: the fields the
// decoder emits, checked as they come (RFC 9113 §8.2). After the first
// fault the rest is decoded but dropped.
type clientHeaderBlock struct {
	fields  []hpack.HeaderField
	pseudo  int    // how many of fields are pseudo-fields (they come first)
	size    uint64 // as SETTINGS_MAX_HEADER_LIST_SIZE counts it
	invalid string // the first fault
}

func (b *clientHeaderBlock) reset() {
	clear(b.fields)
	*b = clientHeaderBlock{fields: b.fields[:0]}
}

// add is the HPACK decoder's emit function.
func (b *clientHeaderBlock) add(f hpack.HeaderField) {
	if b.invalid != "" {
		return
	}
	if b.size += uint64(f.Size()); b.size > clientMaxHeaderList {
		b.invalid = fmt.Sprintf("a header list larger than the %d bytes the client takes", clientMaxHeaderList)
		return
	}
	if b.invalid = fieldFault(f, b.pseudo < len(b.fields)); b.invalid != "" {
		return
	}
	if strings.HasPrefix(f.Name, ":") {
		b.pseudo++
	}
	b.fields = append(b.fields, f)
}

// fieldFault is what makes f malformed in a response (RFC 9113 §8.2.1,
// §8.2.2, §8.3), or "".
func fieldFault(f hpack.HeaderField, afterRegular bool) string {
	if strings.HasPrefix(f.Name, ":") {
		if afterRegular {
			return fmt.Sprintf("pseudo-field %q after regular fields", f.Name)
		}
		return "" // which ones, and how often: onHeaders
	}
	if !validFieldName(f.Name) {
		return fmt.Sprintf("invalid field name %q", f.Name)
	}
	// The value is not quoted: it may be a secret.
	if !httpguts.ValidHeaderFieldValue(f.Value) {
		return fmt.Sprintf("invalid characters in the value of %q", f.Name)
	}
	if v := f.Value; v != "" && (isSpace(v[0]) || isSpace(v[len(v)-1])) {
		return fmt.Sprintf("white space around the value of %q", f.Name)
	}
	switch f.Name {
	case "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade":
		return fmt.Sprintf("connection-specific field %q", f.Name)
	}
	return ""
}

// validFieldName: a token in lower case.
func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if !httpguts.IsTokenRune(r) || 'A' <= r && r <= 'Z' {
			return false
		}
	}
	return true
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' }
