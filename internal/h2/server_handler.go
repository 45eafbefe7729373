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
func (c *serverConn) schedule(st *serverStream) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil
	}
	if c.running < int(c.set.maxStreams) {
		c.startLocked(st)
		return nil
	}
	if len(c.waiting) > 4*int(c.set.maxStreams) {
		return connError(http2.ErrCodeEnhanceYourCalm)
	}
	c.waiting = append(c.waiting, st)
	return nil
}

// startLocked runs a handler on a goroutine of the connection's: one
// that ran a handler before and waits for the next, or a new one. Kept
// goroutines have the stacks their handlers grew, so a request does not
// pay for a goroutine and its stack's growth each time; c.mu is held.
func (c *serverConn) startLocked(st *serverStream) {
	c.running++
	if n := len(c.idleWorkers); n > 0 {
		w := c.idleWorkers[n-1]
		c.idleWorkers[n-1] = nil
		c.idleWorkers = c.idleWorkers[:n-1]
		w <- st // buffered: the worker may not be waiting yet
		return
	}
	c.handlers.Add(1)
	go c.worker(st)
}

// maxIdleWorkers bounds the goroutines a connection keeps for handlers
// to come.
const maxIdleWorkers = 32

// worker runs handlers until the connection ends or it is not needed.
func (c *serverConn) worker(st *serverStream) {
	defer c.handlers.Done()
	var next chan *serverStream
	for st != nil {
		c.runHandler(st)
		c.mu.Lock()
		c.handlerDoneLocked()
		keep := c.err == nil && len(c.idleWorkers) < maxIdleWorkers
		if keep {
			if next == nil {
				next = make(chan *serverStream, 1)
			}
			c.idleWorkers = append(c.idleWorkers, next)
		}
		c.mu.Unlock()
		if !keep {
			return
		}
		st = <-next // nil: the connection ended
	}
}

func (c *serverConn) runHandler(st *serverStream) {
	rw, req := &st.rw, st.req
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
	st.handler.ServeHTTP(rw, req)
	panicked = false
}

// handlerDoneLocked starts waiting handlers while there is room, skipping
// those whose streams were reset meanwhile; c.mu is held.
func (c *serverConn) handlerDoneLocked() {
	c.running--
	for len(c.waiting) > 0 && c.running < int(c.set.maxStreams) && c.err == nil {
		st := c.waiting[0]
		c.waiting[0] = nil
		c.waiting = c.waiting[1:]
		if !st.reset {
			c.startLocked(st)
		}
	}
	if len(c.waiting) == 0 {
		c.waiting = nil
	}
	if c.running == 0 && len(c.streams) == 0 && c.idle != nil && c.err == nil {
		c.idle.Reset(c.set.idleTimeout)
	}
}
