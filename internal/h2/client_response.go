package h2

import (
	"fmt"
	"net/http"
	"strconv"

	"golang.org/x/net/http2"
)

// clientMax1xx bounds the interim (1xx) responses before a final one.
const clientMax1xx = 8

// onHeaders takes the header block just decoded (c.block) for stream id:
// an interim response, the final one, or trailers (RFC 9113 §8.1). A
// block that does not fit where it came resets the stream.
func (c *ClientConn) onHeaders(id uint32, end bool) error {
	b := &c.block
	c.mu.Lock()
	s, state := c.streamState(id)
	var fault string
	code := http2.ErrCodeProtocol
	var status int
	var h http.Header
	switch {
	case state == streamIdle:
		c.mu.Unlock()
		return connErr(http2.ErrCodeProtocol, "HEADERS on stream %d, which was never opened", id)
	case s == nil:
	case s.recvEnd:
		code, fault = http2.ErrCodeStreamClosed, "HEADERS after END_STREAM"
	case b.invalid != "":
		fault = b.invalid
	case s.final: // trailers
		switch {
		case !end:
			fault = "trailers without END_STREAM"
		case b.pseudo > 0:
			fault = "a pseudo-field in trailers"
		}
	default:
		status, fault = responseStatus(b)
		switch {
		case fault != "":
		case status >= 200:
			h, fault = s.finalResponse(b, status)
		case end:
			fault = "an interim (1xx) response with END_STREAM"
		case status == http.StatusSwitchingProtocols:
			fault = "101 Switching Protocols, which HTTP/2 does not have"
		default:
			if s.num1xx++; s.num1xx > clientMax1xx {
				fault = fmt.Sprintf("more than %d interim (1xx) responses", clientMax1xx)
			}
		}
	}
	c.mu.Unlock()
	switch {
	case fault != "":
		c.resetFor(s, code, fault)
	case state == streamClosed:
		c.onClosedStream(id)
	case s == nil, status != 0 && status < 200:
	default:
		if h != nil {
			s.respond(status, h, nil)
		}
		if end {
			c.endRecv(s)
		}
	}
	return nil
}

// responseStatus is the :status of a response's header block, which must
// be its only pseudo-field, as three digits.
func responseStatus(b *clientHeaderBlock) (int, string) {
	if b.pseudo != 1 || b.fields[0].Name != ":status" {
		return 0, "a response whose pseudo-fields are not one :status"
	}
	v := b.fields[0].Value
	code, err := strconv.Atoi(v)
	if err != nil || len(v) != 3 || code < 100 {
		return 0, fmt.Sprintf("a response with :status %q", v)
	}
	return code, ""
}

// finalResponse records that s has its final response and returns its
// header fields; and the Content-Length the body is held to, which must
// be one number. c.mu is held.
func (s *ClientStream) finalResponse(b *clientHeaderBlock, status int) (http.Header, string) {
	h := make(http.Header, len(b.fields)-1)
	for _, f := range b.fields[1:] {
		k := http.CanonicalHeaderKey(f.Name)
		h[k] = append(h[k], f.Value)
	}
	if cls := h["Content-Length"]; len(cls) > 0 {
		n, err := strconv.ParseUint(cls[0], 10, 63)
		for _, v := range cls[1:] {
			if v != cls[0] {
				err = strconv.ErrSyntax
			}
		}
		if err != nil {
			return nil, "an invalid Content-Length"
		}
		if s.checkLen && status != http.StatusNoContent && status != http.StatusNotModified {
			s.wantLen = int64(n)
		}
	}
	s.final = true
	return h, ""
}
