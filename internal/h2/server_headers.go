package h2

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// headerBlock is a decoded header block: a HEADERS frame and its
// CONTINUATIONs. Its fields are valid until the next block is read.
type headerBlock struct {
	*http2.HeadersFrame
	fields    []hpack.HeaderField
	truncated bool // over the header-list limit: fields is incomplete
}

func (b *headerBlock) pseudo() []hpack.HeaderField {
	for i, f := range b.fields {
		if !f.IsPseudo() {
			return b.fields[:i]
		}
	}
	return b.fields
}

func (b *headerBlock) regular() []hpack.HeaderField { return b.fields[len(b.pseudo()):] }

// headerReader decodes a connection's header blocks on the read loop,
// into fields it keeps from one block to the next. It checks what
// net/http's bundled Framer checks, in the same way (the Framer of the
// x/net release we build on differs: it counts trailers apart, so it
// reads blocks up to twice as large before it hangs up).
type headerReader struct {
	fr     *http2.Framer
	dec    *hpack.Decoder
	limit  uint32 // SETTINGS_MAX_HEADER_LIST_SIZE we sent
	block  headerBlock
	remain uint32
	saw    bool  // a regular field was seen
	bad    error // the first invalid field
}

func newHeaderReader(fr *http2.Framer, tableSize, limit uint32) *headerReader {
	hr := &headerReader{fr: fr, limit: limit}
	hr.dec = hpack.NewDecoder(tableSize, hr.emit)
	hr.dec.SetMaxStringLength(int(min(limit, 1<<31-1)))
	return hr
}

func (hr *headerReader) emit(f hpack.HeaderField) {
	if !httpguts.ValidHeaderFieldValue(f.Value) {
		hr.bad = fmt.Errorf("invalid header field value for %q", f.Name)
	}
	if strings.HasPrefix(f.Name, ":") {
		if hr.saw {
			hr.bad = errors.New("pseudo header field after regular")
		}
	} else {
		hr.saw = true
		if !validWireName(f.Name) {
			hr.bad = fmt.Errorf("invalid header field name %q", f.Name)
		}
	}
	if hr.bad != nil {
		hr.dec.SetEmitEnabled(false)
		return
	}
	if size := f.Size(); size > hr.remain {
		hr.dec.SetEmitEnabled(false)
		hr.block.truncated = true
		hr.remain = 0
		return
	} else {
		hr.remain -= size
	}
	hr.block.fields = append(hr.block.fields, f)
}

// read decodes the block that hf starts, reading its CONTINUATIONs.
func (hr *headerReader) read(hf *http2.HeadersFrame) (*headerBlock, error) {
	b := &hr.block
	clear(b.fields)
	*b = headerBlock{HeadersFrame: hf, fields: b.fields[:0]}
	hr.remain, hr.saw, hr.bad = hr.limit, false, nil
	hr.dec.SetEmitEnabled(true)
	frag, ended := hf.HeaderBlockFragment(), hf.HeadersEnded()
	for {
		// A fragment far over what is left of the limit, or any that
		// follows an invalid field, is not decoded: the connection ends
		// (CVE-2023-45288).
		if int64(len(frag)) > 2*int64(hr.remain) || hr.bad != nil {
			return nil, connError(http2.ErrCodeProtocol)
		}
		if _, err := hr.dec.Write(frag); err != nil {
			return nil, connError(http2.ErrCodeCompression)
		}
		if ended {
			break
		}
		f, err := hr.fr.ReadFrame() // the Framer sees that it is the CONTINUATION
		if err != nil {
			return nil, err
		}
		cf := f.(*http2.ContinuationFrame)
		frag, ended = cf.HeaderBlockFragment(), cf.HeadersEnded()
	}
	if err := hr.dec.Close(); err != nil {
		return nil, connError(http2.ErrCodeCompression)
	}
	if hr.bad != nil {
		return nil, http2.StreamError{StreamID: hf.StreamID, Code: http2.ErrCodeProtocol, Cause: hr.bad}
	}
	if err := checkPseudos(b.pseudo()); err != nil {
		return nil, http2.StreamError{StreamID: hf.StreamID, Code: http2.ErrCodeProtocol, Cause: err}
	}
	return b, nil
}

func checkPseudos(pf []hpack.HeaderField) error {
	var request, response bool
	for i, f := range pf {
		switch f.Name {
		case ":method", ":path", ":scheme", ":authority", ":protocol":
			request = true
		case ":status":
			response = true
		default:
			return fmt.Errorf("invalid pseudo-header %q", f.Name)
		}
		for _, g := range pf[:i] {
			if f.Name == g.Name {
				return fmt.Errorf("duplicate pseudo-header %q", f.Name)
			}
		}
	}
	if request && response {
		return errors.New("mix of request and response pseudo headers")
	}
	return nil
}

// validWireName reports whether v is a valid field name in HTTP/2: a
// token, in lower case.
func validWireName(v string) bool {
	if v == "" {
		return false
	}
	for _, r := range v {
		if !httpguts.IsTokenRune(r) || 'A' <= r && r <= 'Z' {
			return false
		}
	}
	return true
}
