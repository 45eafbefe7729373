package doh

import (
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxEncodedQuery is the longest ?dns= value that can hold a DNS message.
var maxEncodedQuery = base64.RawURLEncoding.EncodedLen(MaxMessageSize) + 2

// decodeQuery reads the dns parameter of a GET into s.in.
func (s *scratch) decodeQuery(rawQuery string) (int, string) {
	v, ok := "", false
	for rawQuery != "" && !ok {
		var kv string
		kv, rawQuery, _ = strings.Cut(rawQuery, "&")
		v, ok = strings.CutPrefix(kv, "dns=")
	}
	if !ok || v == "" {
		return http.StatusBadRequest, "no dns parameter"
	}
	if len(v) > maxEncodedQuery*3 {
		return http.StatusRequestURITooLong, "dns parameter too long"
	}
	if strings.IndexByte(v, '%') >= 0 {
		u, err := url.QueryUnescape(v)
		if err != nil {
			return http.StatusBadRequest, "dns parameter is not base64url"
		}
		v = u
	}
	if len(v) > maxEncodedQuery {
		return http.StatusRequestURITooLong, "dns parameter too long"
	}
	// RFC 8484 §6 says base64url without padding; padded input is
	// tolerated, as clients have sent it.
	if strings.HasSuffix(v, "==") {
		v = v[:len(v)-2]
	} else if strings.HasSuffix(v, "=") {
		v = v[:len(v)-1]
	}
	n := base64.RawURLEncoding.DecodedLen(len(v))
	if cap(s.in) < n {
		s.in = make([]byte, 0, n)
	}
	s.enc = append(s.enc[:0], v...)
	n, err := base64.RawURLEncoding.Decode(s.in[:n], s.enc)
	if err != nil {
		return http.StatusBadRequest, "dns parameter is not base64url"
	}
	if n == 0 {
		return http.StatusBadRequest, "empty query"
	}
	s.in = s.in[:n]
	return 0, ""
}

// readBody reads a POST body into s.in, never more than a DNS message.
func (s *scratch) readBody(w http.ResponseWriter, r *http.Request) (int, string) {
	ct := r.Header.Get("Content-Type")
	mt, _, _ := strings.Cut(ct, ";")
	if !strings.EqualFold(strings.TrimSpace(mt), MediaType) {
		return http.StatusUnsupportedMediaType, "content type must be " + MediaType
	}
	if r.ContentLength > MaxMessageSize {
		return http.StatusRequestEntityTooLarge, "query longer than a DNS message"
	}
	body := http.MaxBytesReader(w, r.Body, MaxMessageSize)
	in := s.in[:0]
	if r.ContentLength > 0 && cap(in) < int(r.ContentLength) {
		in = make([]byte, 0, r.ContentLength)
	}
	for {
		if len(in) == cap(in) {
			in = append(in, 0)[:len(in)]
		}
		n, err := body.Read(in[len(in):cap(in)])
		in = in[:len(in)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			s.in = in
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				return http.StatusRequestEntityTooLarge, "query longer than a DNS message"
			}
			return http.StatusBadRequest, "reading body failed"
		}
	}
	s.in = in
	if len(in) == 0 {
		return http.StatusBadRequest, "empty query"
	}
	return 0, ""
}
