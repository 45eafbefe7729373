package h2

import (
	"net/http"
	"runtime"

	"golang.org/x/net/http2"
)

// schedule starts st's handler, or queues it until a running one ends:
// no more handlers run than streams may be open, so that a client that
// opens and resets streams at once (rapid reset, CVE-2023-44487) cannot
// make the server run more. Past four times that many waiting, the
// connection is cut, as net/http's is.
func (c *serverConn) schedule(st *serverStream, rw *responseWriter, req *http.Request, h http.HandlerFunc) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil
	}
	if c.running < int(c.set.maxStreams) {
		c.startLocked(st, rw, req, h)
		return nil
	}
	if len(c.waiting) > 4*int(c.set.maxStreams) {
		return connError(http2.ErrCodeEnhanceYourCalm)
	}
	c.waiting = append(c.waiting, &queuedHandle{st: st, rw: rw, req: req, h: h})
	return nil
}

// startLocked runs a handler on a goroutine of the connection's; c.mu is
// held.
func (c *serverConn) startLocked(st *serverStream, rw *responseWriter, req *http.Request, h http.HandlerFunc) {
	c.running++
	c.handlers.Add(1)
	go c.runHandler(st, rw, req, h)
}

func (c *serverConn) runHandler(st *serverStream, rw *responseWriter, req *http.Request, h http.HandlerFunc) {
	defer c.handlers.Done()
	defer c.handlerDone()
	panicked := true
	defer func() {
		st.cancel()
		if req.MultipartForm != nil {
			req.MultipartForm.RemoveAll()
		}
		if panicked {
			e := recover()
			c.abort(st, http2.ErrCodeInternal, errHandlerPanicked)
			if e != nil && e != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.log.Error("h2: handler panicked", "remote", c.remote, "panic", e, "stack", string(buf))
			}
			rw.release()
			return
		}
		rw.finish()
	}()
	h(rw, req)
	panicked = false
}

// handlerDone starts waiting handlers while there is room, skipping
// those whose streams were reset meanwhile.
func (c *serverConn) handlerDone() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.running--
	for len(c.waiting) > 0 && c.running < int(c.set.maxStreams) && c.err == nil {
		q := c.waiting[0]
		c.waiting[0] = nil
		c.waiting = c.waiting[1:]
		if !q.st.reset {
			c.startLocked(q.st, q.rw, q.req, q.h)
		}
	}
	if len(c.waiting) == 0 {
		c.waiting = nil
	}
	if c.running == 0 && len(c.streams) == 0 && c.idle != nil && c.err == nil {
		c.idle.Reset(c.set.idleTimeout)
	}
}
