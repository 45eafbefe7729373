package h2

import (
	"bufio"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2/hpack"
)

// resHeaders is a response's header block (or its trailers: status 0).
type resHeaders struct {
	status            int
	h                 http.Header
	trailers          []string // the keys of h to send, as trailers; nil: all of h, sorted
	end               bool
	ctype, clen, date string // fields net/http's server adds, after the handler's
}

// writeHeaders sends a header block on st.
func (c *serverConn) writeHeaders(st *serverStream, rh *resHeaders) error {
	return c.send(st, rh, nil, rh.end)
}

// maxWriteBatch bounds what one stream writes while it holds the writer,
// so that streams take turns on a busy connection. It takes a tunnel's
// download chunk (256 KiB with its frame header: whole TLS records) at
// once.
const maxWriteBatch = 256 << 10

// writeData sends p on st as DATA frames within the flow-control windows,
// waiting for window as it must; end puts END_STREAM on the last.
func (c *serverConn) writeData(st *serverStream, p []byte, end bool) error {
	for {
		n, err := c.reserve(st, min(len(p), maxWriteBatch), true)
		if err != nil {
			return err
		}
		chunk := p[:n]
		p = p[n:]
		if err := c.send(st, nil, chunk, end && len(p) == 0); err != nil {
			return err
		}
		if len(p) == 0 {
			return nil
		}
	}
}

// writeResponse sends a whole response, its header block and its body
// (END_STREAM on the last frame), in one go when the windows have room
// for the body, as a DoH answer's: one turn at the writer and one flush.
func (c *serverConn) writeResponse(st *serverStream, rh *resHeaders, body []byte) error {
	if n, err := c.reserve(st, len(body), false); err != nil {
		return err
	} else if n < len(body) { // too big, or no room yet: in two steps
		c.giveBack(st, n)
		if err := c.writeHeaders(st, rh); err != nil {
			return err
		}
		return c.writeData(st, body, true)
	}
	return c.send(st, rh, body, true)
}

// send writes, in one turn at the writer, rh's header block if rh is not
// nil and then data as DATA frames (window for it already reserved); end
// puts END_STREAM on the last frame.
func (c *serverConn) send(st *serverStream, rh *resHeaders, data []byte, end bool) error {
	w := c.w
	defer w.unlock()
	if err := w.lock(); err != nil {
		return err
	}
	c.mu.Lock()
	err := st.werr
	if err != nil {
		c.giveBackLocked(st, len(data)) // not sent
	} else if end {
		st.sentEnd = true
		c.maybeCloseLocked(st)
	}
	maxFrame := c.peerFrame
	pad := noPad
	if err == nil && len(data) > 0 {
		pad = c.padLocked(st, min(len(data), maxFrame-1-255))
	}
	c.unlock() // what it queues waits for w.unlock
	if err != nil {
		return err
	}
	if rh != nil {
		if err := w.headerBlock(st.id, rh, end && data == nil, maxFrame); err != nil {
			return err
		}
		if data == nil {
			return nil
		}
	}
	for {
		k := min(len(data), maxFrame)
		if pad >= 0 {
			k = min(len(data), maxFrame-1-pad)
		}
		if err := w.check(w.dw.write(w.bw, st.id, data[:k], pad, end && k == len(data))); err != nil {
			return err
		}
		data, pad = data[k:], noPad // only a write's first frame is padded
		if len(data) == 0 {
			return nil
		}
	}
}

// padLocked is the padding of st's next frame of n bytes, taken from the
// windows with what they have to spare; c.mu is held.
func (c *serverConn) padLocked(st *serverStream, n int) int {
	spare := min(st.outflow, c.outflow) - 1 // the pad length byte counts too
	pad := st.pad.next(c.rng, n, int(min(spare, 255)))
	if pad >= 0 {
		st.outflow -= int64(1 + pad)
		c.outflow -= int64(1 + pad)
	}
	return pad
}

// headerBlock encodes rh and writes it; w.mu is held.
func (w *frameWriter) headerBlock(id uint32, rh *resHeaders, end bool, maxFrame int) error {
	if n := w.tableSize.Swap(-1); n >= 0 {
		w.henc.SetMaxDynamicTableSize(uint32(n))
	}
	w.hbuf.Reset()
	if rh.status != 0 {
		w.field(":status", statusText(rh.status))
	}
	w.encodeHeaders(rh.h, rh.trailers)
	if rh.ctype != "" {
		w.field("content-type", rh.ctype)
	}
	if rh.clen != "" {
		w.field("content-length", rh.clen)
	}
	if rh.date != "" {
		w.field("date", rh.date)
	}
	return w.writeHeaderBlock(id, end, maxFrame)
}

// giveBack returns n reserved bytes that were not sent to the windows.
func (c *serverConn) giveBack(st *serverStream, n int) {
	c.mu.Lock()
	c.giveBackLocked(st, n)
	c.mu.Unlock()
}

func (c *serverConn) giveBackLocked(st *serverStream, n int) {
	if n == 0 {
		return
	}
	st.outflow += int64(n)
	c.outflow += int64(n)
	c.wakeBlockedLocked()
}

// reserve takes up to want bytes from both of st's send windows; with
// wait, it waits until there is some room.
func (c *serverConn) reserve(st *serverStream, want int, wait bool) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if st.werr != nil {
			return 0, st.werr
		}
		if want == 0 {
			return 0, nil
		}
		if n := min(int64(want), st.outflow, c.outflow); n > 0 || !wait {
			n = max(n, 0)
			st.outflow -= n
			c.outflow -= n
			return int(n), nil
		}
		c.blocked[st] = struct{}{}
		ch := st.writeWaiter()
		c.mu.Unlock()
		<-ch
		c.mu.Lock()
	}
}

// write100Continue answers a request's "Expect: 100-continue" when its
// handler first reads the body, unless the response header went first.
func (c *serverConn) write100Continue(st *serverStream) {
	c.writeHeaders(st, &resHeaders{status: http.StatusContinue})
}

func (w *frameWriter) field(name, value string) {
	w.henc.WriteField(hpack.HeaderField{Name: name, Value: value})
}

// encodeHeaders encodes h in the order net/http's server does (keys
// sorted, or as given), in lower case, leaving out what HTTP/2 forbids.
func (w *frameWriter) encodeHeaders(h http.Header, keys []string) {
	if keys == nil {
		w.keys = w.keys[:0]
		for k := range h {
			w.keys = append(w.keys, k)
		}
		slices.Sort(w.keys)
		keys = w.keys
	}
	for _, k := range keys {
		vv := h[k]
		name, ok := lowerHeader(k)
		if !ok || !httpguts.ValidHeaderFieldName(name) {
			continue
		}
		isTE := name == "transfer-encoding"
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) || isTE && v != "trailers" {
				continue
			}
			w.field(name, v)
		}
	}
}

// lowerHeader is k in lower case, or false if it is not ASCII.
func lowerHeader(k string) (string, bool) {
	upper := false
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c >= 0x80 {
			return "", false
		}
		upper = upper || 'A' <= c && c <= 'Z'
	}
	if !upper {
		return k, true
	}
	if l, ok := commonLower(k); ok {
		return l, true
	}
	b := []byte(k)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b), true
}

// commonLower is the wire name of a common response header, without an
// allocation.
func commonLower(k string) (string, bool) {
	switch k {
	case "Accept-Ranges":
		return "accept-ranges", true
	case "Cache-Control":
		return "cache-control", true
	case "Content-Encoding":
		return "content-encoding", true
	case "Content-Length":
		return "content-length", true
	case "Content-Type":
		return "content-type", true
	case "Date":
		return "date", true
	case "Etag":
		return "etag", true
	case "Last-Modified":
		return "last-modified", true
	case "Location":
		return "location", true
	case "Proxy-Status":
		return "proxy-status", true
	case "Server":
		return "server", true
	case "Set-Cookie":
		return "set-cookie", true
	case "Strict-Transport-Security":
		return "strict-transport-security", true
	case "Vary":
		return "vary", true
	case "X-Content-Type-Options":
		return "x-content-type-options", true
	}
	return "", false
}

func statusText(code int) string {
	switch code {
	case 200:
		return "200"
	case 404:
		return "404"
	}
	return strconv.Itoa(code)
}

// date is the Date header of a response sent now; it is formatted once a
// second.
func (s *Server) date() string {
	now := time.Now().Unix()
	if d := s.dateCache.Load(); d != nil && d.sec == now {
		return d.text
	}
	d := &dateText{sec: now, text: time.Unix(now, 0).UTC().Format(http.TimeFormat)}
	s.dateCache.Store(d)
	return d.text
}

type dateText struct {
	sec  int64
	text string
}

func (s *Server) getBuffer(w io.Writer) *bufio.Writer {
	if bw, ok := s.buffers.Get().(*bufio.Writer); ok {
		bw.Reset(w)
		return bw
	}
	return bufio.NewWriterSize(w, handlerChunk)
}

func (s *Server) putBuffer(bw *bufio.Writer) {
	bw.Reset(nil)
	s.buffers.Put(bw)
}
