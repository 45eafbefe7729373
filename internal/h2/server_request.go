package h2

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
)

// processHeaders opens a stream for a request, or takes a stream's
// trailers.
func (c *serverConn) processHeaders(f *headerBlock) error {
	id := f.StreamID
	if id%2 != 1 {
		return connError(http2.ErrCodeProtocol) // §5.1.1: clients use odd IDs
	}
	c.mu.Lock()
	if st := c.streams[id]; st != nil {
		defer c.mu.Unlock()
		switch {
		case st.reset:
			return nil
		case st.recvEnd:
			return streamError(id, http2.ErrCodeStreamClosed) // §5.1: half-closed (remote)
		}
		return c.trailersLocked(st, f)
	}
	if id <= c.maxClientID {
		c.mu.Unlock()
		return connError(http2.ErrCodeProtocol) // §5.1.1: IDs only go up
	}
	c.maxClientID = id
	if len(c.streams) >= int(c.set.maxStreams) {
		code := http2.ErrCodeProtocol // §5.1.2: it knew our limit
		if c.unacked > 0 {
			code = http2.ErrCodeRefusedStream // it may not have seen it yet
		}
		c.mu.Unlock()
		return streamError(id, code)
	}
	st := c.newStreamLocked(id, f.StreamEnded())
	c.mu.Unlock()
	if f.HasPriority() && f.Priority.StreamDep == id {
		return streamError(id, http2.ErrCodeProtocol) // §5.3.1
	}
	if err := c.newRequest(st, f); err != nil {
		return err
	}
	st.handler = c.handler
	if st.req.Method == http.MethodOptions && st.req.RequestURI == "*" && !c.hs.DisableGeneralOptionsHandler {
		st.handler = http.HandlerFunc(optionsStar)
	}
	if f.truncated {
		st.handler = http.HandlerFunc(headerListTooLong)
	} else if err := checkRequestHeaders(st.req.Header); err != nil {
		st.handler = badRequest(err)
	}
	return c.schedule(st)
}

// trailersLocked takes the trailers that end st's request; c.mu is held.
func (c *serverConn) trailersLocked(st *serverStream, f *headerBlock) error {
	if st.gotTrailers {
		return connError(http2.ErrCodeProtocol)
	}
	st.gotTrailers = true
	if !f.StreamEnded() || len(f.pseudo()) > 0 {
		return streamError(st.id, http2.ErrCodeProtocol) // §8.1
	}
	if st.reqTrailer != nil {
		for _, hf := range f.regular() {
			key := c.canon.key(hf.Name)
			if !httpguts.ValidTrailerHeader(key) {
				return streamError(st.id, http2.ErrCodeProtocol)
			}
			if st.trailer == nil {
				st.trailer = make(http.Header)
			}
			st.trailer[key] = append(st.trailer[key], hf.Value)
		}
	}
	c.bodyEndedLocked(st)
	return nil
}

// newRequest makes st's http.Request from its HEADERS, as net/http's
// server makes it, and its ResponseWriter.
func (c *serverConn) newRequest(st *serverStream, f *headerBlock) error {
	var method, scheme, authority, path, protocol string
	for _, hf := range f.pseudo() {
		switch hf.Name {
		case ":method":
			method = hf.Value
		case ":scheme":
			scheme = hf.Value
		case ":authority":
			authority = hf.Value
		case ":path":
			path = hf.Value
		case ":protocol":
			protocol = hf.Value
		}
	}
	if protocol != "" && (!c.srv.EnableConnectProtocol || method != http.MethodConnect) {
		return malformed(st)
	}
	if method == http.MethodConnect {
		if protocol == "" && (path != "" || scheme != "" || authority == "") {
			return malformed(st) // §8.5
		}
	} else if method == "" || path == "" || (scheme != "https" && scheme != "http") {
		return malformed(st) // §8.3.1
	}
	regular := f.regular()
	header := make(http.Header, len(regular))
	values := make([]string, len(regular)) // one array for the values: a field's slice of it
	for i, hf := range regular {
		k := c.canon.key(hf.Name)
		if vv, ok := header[k]; ok {
			header[k] = append(vv, hf.Value)
			continue
		}
		values[i] = hf.Value
		header[k] = values[i : i+1 : i+1]
	}
	if authority == "" {
		authority = header.Get("Host")
	}
	if protocol != "" {
		header.Set(":protocol", protocol)
	}
	needsContinue := httpguts.HeaderValuesContainsToken(header["Expect"], "100-continue")
	if needsContinue {
		delete(header, "Expect")
	}
	if cookies := header["Cookie"]; len(cookies) > 1 {
		header["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	trailer := declaredTrailers(header)
	if strings.IndexByte(authority, '@') >= 0 && (scheme == "http" || scheme == "https") {
		return malformed(st) // §8.3.1: no userinfo
	}
	var u *url.URL
	requestURI := path
	if method == http.MethodConnect && protocol == "" {
		u, requestURI = &url.URL{Host: authority}, authority
	} else {
		var err error
		if u, err = url.ParseRequestURI(path); err != nil {
			return malformed(st)
		}
	}
	st.reqBody = requestBody{st: st, needsContinue: needsContinue}
	req := http.Request{
		Method:        method,
		URL:           u,
		Proto:         "HTTP/2.0",
		ProtoMajor:    2,
		Header:        header,
		Body:          &st.reqBody,
		ContentLength: 0,
		Host:          authority,
		Trailer:       trailer,
		RemoteAddr:    c.remote,
		RequestURI:    requestURI,
		TLS:           c.tlsState,
	}
	if st.hasBody {
		req.ContentLength = -1
		if vv, ok := header["Content-Length"]; ok {
			req.ContentLength = 0
			if n, err := strconv.ParseUint(vv[0], 10, 63); err == nil {
				req.ContentLength = int64(n)
			}
		}
	}
	c.mu.Lock()
	st.declBytes = -1
	if st.hasBody {
		st.declBytes = req.ContentLength
	}
	st.reqTrailer = trailer
	c.mu.Unlock()
	st.req = req.WithContext(st.ctx) // a copy: req itself stays on the stack
	st.rw.init(st, st.req)
	return nil
}

// malformed is the stream error for a malformed request (§8.1.1).
func malformed(st *serverStream) error { return streamError(st.id, http2.ErrCodeProtocol) }

// declaredTrailers takes the Trailer header out of h and returns the
// trailers it declares, as net/http does.
func declaredTrailers(h http.Header) http.Header {
	var trailer http.Header
	for _, v := range h["Trailer"] {
		for key := range strings.SplitSeq(v, ",") {
			key = textproto.CanonicalMIMEHeaderKey(textproto.TrimString(key))
			switch key {
			case "Transfer-Encoding", "Trailer", "Content-Length":
			default:
				if trailer == nil {
					trailer = make(http.Header)
				}
				trailer[key] = nil
			}
		}
	}
	delete(h, "Trailer")
	return trailer
}

// connHeaders are not valid in an HTTP/2 request (RFC 9113 §8.2.2).
var connHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade"}

func checkRequestHeaders(h http.Header) error {
	for _, k := range connHeaders {
		if _, ok := h[k]; ok {
			return &badHeaderError{"request header " + strconv.Quote(k) + " is not valid in HTTP/2"}
		}
	}
	if te := h["Te"]; len(te) > 0 && (len(te) > 1 || (te[0] != "trailers" && te[0] != "")) {
		return &badHeaderError{`request header "TE" may only be "trailers" in HTTP/2`}
	}
	return nil
}

type badHeaderError struct{ msg string }

func (e *badHeaderError) Error() string { return e.msg }

func badRequest(err error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, err.Error(), http.StatusBadRequest)
	}
}

// headerListTooLong answers a request whose header list was over the
// limit, as net/http's server does (RFC 9113 §10.5.1).
func headerListTooLong(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusRequestHeaderFieldsTooLarge)
	w.Write([]byte("<h1>HTTP Error 431</h1><p>Request Header Field(s) Too Large</p>"))
}

// canonCache maps the lower-case field names of HTTP/2 to Go's canonical
// header keys, for one connection's read loop, within a bound on what it
// keeps (as net/http's canonicalHeader).
type canonCache struct {
	m    map[string]string
	size int
}

const maxCanonCache = 2048 // bytes of keys, net/http's maxCachedCanonicalHeadersKeysSize

func (cc *canonCache) key(v string) string {
	if k, ok := commonCanon(v); ok {
		return k
	}
	if k, ok := cc.m[v]; ok {
		return k
	}
	k := textproto.CanonicalMIMEHeaderKey(v)
	if cc.size+len(v) <= maxCanonCache {
		if cc.m == nil {
			cc.m = make(map[string]string)
		}
		cc.m[v] = k
		cc.size += len(v)
	}
	return k
}

// commonCanon is the canonical key of a common request field name.
func commonCanon(v string) (string, bool) {
	switch v {
	case "accept":
		return "Accept", true
	case "accept-charset":
		return "Accept-Charset", true
	case "accept-encoding":
		return "Accept-Encoding", true
	case "accept-language":
		return "Accept-Language", true
	case "accept-ranges":
		return "Accept-Ranges", true
	case "authorization":
		return "Authorization", true
	case "cache-control":
		return "Cache-Control", true
	case "content-encoding":
		return "Content-Encoding", true
	case "content-language":
		return "Content-Language", true
	case "content-length":
		return "Content-Length", true
	case "content-type":
		return "Content-Type", true
	case "cookie":
		return "Cookie", true
	case "date":
		return "Date", true
	case "etag":
		return "Etag", true
	case "expect":
		return "Expect", true
	case "host":
		return "Host", true
	case "if-match":
		return "If-Match", true
	case "if-modified-since":
		return "If-Modified-Since", true
	case "if-none-match":
		return "If-None-Match", true
	case "if-range":
		return "If-Range", true
	case "if-unmodified-since":
		return "If-Unmodified-Since", true
	case "origin":
		return "Origin", true
	case "pragma":
		return "Pragma", true
	case "priority":
		return "Priority", true
	case "proxy-authorization":
		return "Proxy-Authorization", true
	case "range":
		return "Range", true
	case "referer":
		return "Referer", true
	case "te":
		return "Te", true
	case "trailer":
		return "Trailer", true
	case "user-agent":
		return "User-Agent", true
	case "via":
		return "Via", true
	case "x-forwarded-for":
		return "X-Forwarded-For", true
	case "x-forwarded-host":
		return "X-Forwarded-Host", true
	case "x-forwarded-proto":
		return "X-Forwarded-Proto", true
	case "sec-fetch-dest":
		return "Sec-Fetch-Dest", true
	case "sec-fetch-mode":
		return "Sec-Fetch-Mode", true
	case "sec-fetch-site":
		return "Sec-Fetch-Site", true
	case "sec-fetch-user":
		return "Sec-Fetch-User", true
	case "upgrade-insecure-requests":
		return "Upgrade-Insecure-Requests", true
	}
	return "", false
}
