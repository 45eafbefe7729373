package h2

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
)

// responseWriter is a request's http.ResponseWriter. It behaves as
// net/http's HTTP/2 one does, to the header order and the frames sent
// (a 4 KiB buffer; Content-Length when the whole body fits in it;
// Content-Type sniffed; Date; trailers declared or with http.TrailerPrefix),
// and adds CloseWrite and Reset.
type responseWriter struct {
	st  *serverStream
	c   *serverConn
	req *http.Request
	bw  *bufio.Writer // nil once the handler returned

	handlerHeader  http.Header
	snapHeader     http.Header     // handlerHeader when WriteHeader was called
	snap           *headerSnapshot // what snapHeader is kept in, given back once sent
	trailers       []string
	status         int
	wroteHeader    bool
	sentHeader     bool
	done           bool // the response is complete: CloseWrite, or the handler returned
	sentContentLen int64
	wroteBytes     int64
}

var (
	_ http.Flusher = (*responseWriter)(nil)
	_ CloseWriter  = (*responseWriter)(nil)
	_ Resetter     = (*responseWriter)(nil)
)

var errHandlerPanicked = errors.New("h2: handler panicked")

func (rw *responseWriter) init(st *serverStream, req *http.Request) {
	*rw = responseWriter{st: st, c: st.c, req: req}
	rw.bw = st.c.srv.getBuffer(chunkWriter{rw})
}

// chunkWriter is what the response buffer writes to.
type chunkWriter struct{ rw *responseWriter }

func (cw chunkWriter) Write(p []byte) (int, error) { return cw.rw.writeChunk(p) }

func (rw *responseWriter) Header() http.Header {
	if rw.handlerHeader == nil {
		rw.handlerHeader = make(http.Header)
	}
	return rw.handlerHeader
}

func (rw *responseWriter) WriteHeader(code int) {
	if rw.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 200 { // informational: sent at once, the header map kept (RFC 8297)
		h := rw.handlerHeader
		_, cl := h["Content-Length"]
		_, te := h["Transfer-Encoding"]
		if cl || te {
			h = h.Clone()
			h.Del("Content-Length")
			h.Del("Transfer-Encoding")
		}
		rw.c.writeHeaders(rw.st, &resHeaders{status: code, h: h, end: rw.done && len(rw.trailers) == 0})
		return
	}
	rw.wroteHeader = true
	rw.status = code
	if len(rw.handlerHeader) > 0 {
		rw.snap = rw.c.srv.snapshot(rw.handlerHeader)
		rw.snapHeader = rw.snap.h
	}
}

func (rw *responseWriter) Write(p []byte) (int, error) {
	if err := rw.beforeWrite(len(p)); err != nil {
		return 0, err
	}
	return rw.bw.Write(p)
}

func (rw *responseWriter) WriteString(s string) (int, error) {
	if err := rw.beforeWrite(len(s)); err != nil {
		return 0, err
	}
	return rw.bw.WriteString(s)
}

func (rw *responseWriter) beforeWrite(n int) error {
	if rw.done {
		return errWriteAfterClose
	}
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(rw.status) {
		return http.ErrBodyNotAllowed
	}
	rw.wroteBytes += int64(n)
	if rw.sentContentLen != 0 && rw.wroteBytes > rw.sentContentLen {
		return errWroteTooMuch
	}
	return nil
}

func (rw *responseWriter) Flush() { rw.FlushError() }

// FlushError sends what is buffered, the header first if it was not sent.
func (rw *responseWriter) FlushError() error {
	if rw.bw.Buffered() > 0 {
		return rw.bw.Flush()
	}
	// The buffer calls writeChunk only with data: send the header, or the
	// END_STREAM of a complete response, by hand.
	if _, err := rw.writeChunk(nil); err != nil {
		return err
	}
	rw.c.mu.Lock()
	defer rw.c.mu.Unlock()
	if rw.st.reset {
		return rw.st.werr
	}
	return nil
}

// CloseWrite completes the response: what is buffered, then END_STREAM
// (or the trailers). The request body can still be read.
func (rw *responseWriter) CloseWrite() error {
	if rw.done {
		return nil
	}
	rw.done = true
	return rw.FlushError()
}

// Reset ends the stream with RST_STREAM and code, from any goroutine.
func (rw *responseWriter) Reset(code http2.ErrCode) {
	rw.c.abort(rw.st, code, fmt.Errorf("h2: stream reset by the server: %v", code))
}

func (rw *responseWriter) SetReadDeadline(t time.Time) error {
	rw.c.setReadDeadline(rw.st, t)
	return nil
}

func (rw *responseWriter) SetWriteDeadline(t time.Time) error {
	rw.c.setWriteDeadline(rw.st, t)
	return nil
}

// EnableFullDuplex does nothing: HTTP/2 is always full duplex.
func (rw *responseWriter) EnableFullDuplex() error { return nil }

// finish completes the response once the handler returned. A request
// body still arriving is refused (RST_STREAM NO_ERROR, RFC 9113 §8.1),
// and what of it was not read is dropped.
func (rw *responseWriter) finish() {
	if !rw.done {
		rw.done = true
		rw.FlushError()
	}
	rw.release()
	c, st := rw.c, rw.st
	c.mu.Lock()
	st.handlerDone = true
	for _, tm := range []*time.Timer{st.rdl, st.wdl} {
		if tm != nil {
			tm.Stop()
		}
	}
	st.rdl, st.wdl = nil, nil
	if !st.recvEnd && !st.reset && c.err == nil {
		c.mu.Unlock()
		c.abort(st, http2.ErrCodeNo, errHandlerDone)
		return
	}
	if n := st.body.discard(); n > 0 && c.err == nil {
		c.windowUpdateLocked(nil, n)
	}
	c.unlock()
}

// release gives the buffers back once the handler returned.
func (rw *responseWriter) release() {
	if rw.bw != nil {
		rw.c.srv.putBuffer(rw.bw)
		rw.bw = nil
	}
	rw.releaseSnapshot()
}

func (rw *responseWriter) releaseSnapshot() {
	if rw.snap != nil {
		rw.c.srv.putSnapshot(rw.snap)
		rw.snap, rw.snapHeader = nil, nil
	}
}

// headerSnapshot is a copy of a handler's header map, kept from one
// response to the next (net/http's server makes a new one each time).
type headerSnapshot struct {
	h    http.Header
	vals []string // the values, all in one array
}

// snapshot copies h into a headerSnapshot from the pool.
func (s *Server) snapshot(h http.Header) *headerSnapshot {
	hs, _ := s.snapshots.Get().(*headerSnapshot)
	if hs == nil {
		hs = &headerSnapshot{h: make(http.Header, len(h))}
	}
	n := 0
	for _, vv := range h {
		n += len(vv)
	}
	if cap(hs.vals) < n {
		hs.vals = make([]string, 0, n)
	}
	vals := hs.vals[:0]
	for k, vv := range h {
		start := len(vals)
		vals = append(vals, vv...)
		hs.h[k] = vals[start:len(vals):len(vals)]
	}
	hs.vals = vals
	return hs
}

func (s *Server) putSnapshot(hs *headerSnapshot) {
	if len(hs.h) > 32 || cap(hs.vals) > 64 {
		return // an unusual one: not worth keeping
	}
	clear(hs.h)
	clear(hs.vals)
	s.snapshots.Put(hs)
}

// writeChunk is what the buffer writes out (p may be large: bufio passes
// big writes through). The first call sends the header, with the fields
// net/http's server adds.
func (rw *responseWriter) writeChunk(p []byte) (int, error) {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.done {
		rw.promoteUndeclaredTrailers()
	}
	isHead := rw.req.Method == http.MethodHead
	if !rw.sentHeader {
		rw.sentHeader = true
		var ctype, clen string
		if clen = rw.snapHeader.Get("Content-Length"); clen != "" {
			rw.snapHeader.Del("Content-Length")
			if cl, err := strconv.ParseUint(clen, 10, 63); err == nil {
				rw.sentContentLen = int64(cl)
			} else {
				clen = ""
			}
		}
		_, hasCL := rw.snapHeader["Content-Length"]
		if !hasCL && clen == "" && rw.done && bodyAllowed(rw.status) && (len(p) > 0 || !isHead) {
			clen = strconv.Itoa(len(p))
		}
		_, hasCT := rw.snapHeader["Content-Type"]
		if rw.snapHeader.Get("Content-Encoding") == "" && !hasCT && bodyAllowed(rw.status) && len(p) > 0 {
			ctype = http.DetectContentType(p)
		}
		var date string
		if _, ok := rw.snapHeader["Date"]; !ok {
			date = rw.c.srv.date()
		}
		for _, v := range rw.snapHeader["Trailer"] {
			foreachHeaderElement(v, rw.declareTrailer)
		}
		if _, ok := rw.snapHeader["Connection"]; ok {
			v := rw.snapHeader.Get("Connection")
			delete(rw.snapHeader, "Connection")
			if v == "close" {
				rw.c.goAway(http2.ErrCodeNo) // as an HTTP/1 "Connection: close"
			}
		}
		end := (rw.done && len(rw.trailers) == 0 && len(p) == 0) || isHead
		rh := &resHeaders{status: rw.status, h: rw.snapHeader, end: end, ctype: ctype, clen: clen, date: date}
		defer rw.releaseSnapshot() // once the block is sent
		if rw.done && !end && len(rw.trailers) == 0 && len(p) <= maxWriteBatch {
			// The whole response at once, as most are.
			if err := rw.c.writeResponse(rw.st, rh, p); err != nil {
				return 0, err
			}
			return len(p), nil
		}
		if err := rw.c.writeHeaders(rw.st, rh); err != nil || end {
			return 0, err
		}
	}
	if isHead {
		return len(p), nil
	}
	if len(p) == 0 && !rw.done {
		return 0, nil
	}
	withTrailers := rw.hasNonemptyTrailers()
	end := rw.done && !withTrailers
	if len(p) > 0 || end {
		if err := rw.c.writeData(rw.st, p, end); err != nil {
			return 0, err
		}
	}
	if rw.done && withTrailers {
		return len(p), rw.c.writeHeaders(rw.st, &resHeaders{h: rw.handlerHeader, trailers: rw.trailers, end: true})
	}
	return len(p), nil
}

func (rw *responseWriter) hasNonemptyTrailers() bool {
	for _, k := range rw.trailers {
		if _, ok := rw.handlerHeader[k]; ok {
			return true
		}
	}
	return false
}

func (rw *responseWriter) declareTrailer(k string) {
	k = http.CanonicalHeaderKey(k)
	if !httpguts.ValidTrailerHeader(k) {
		return // forbidden as a trailer (RFC 9110 §6.5.1)
	}
	if !slices.Contains(rw.trailers, k) {
		rw.trailers = append(rw.trailers, k)
	}
}

// promoteUndeclaredTrailers makes trailers of the header keys that start
// with http.TrailerPrefix.
func (rw *responseWriter) promoteUndeclaredTrailers() {
	for k, vv := range rw.handlerHeader {
		name, ok := strings.CutPrefix(k, http.TrailerPrefix)
		if !ok {
			continue
		}
		rw.declareTrailer(name)
		rw.handlerHeader[http.CanonicalHeaderKey(name)] = vv
	}
	slices.Sort(rw.trailers)
}

func foreachHeaderElement(v string, fn func(string)) {
	for f := range strings.SplitSeq(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			fn(f)
		}
	}
}

func bodyAllowed(status int) bool {
	return !(status >= 100 && status <= 199 || status == http.StatusNoContent || status == http.StatusNotModified)
}
