package h2

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/net/http2"
)

// requestBody is a request's Body. Read and Close may be called from
// different goroutines.
type requestBody struct {
	st            *serverStream
	needsContinue bool // send "100 Continue" on the first Read
	sawEOF        bool // the trailers were handed over
}

// Read reads what the client sent. With an empty p it waits until there
// is data, or the body ended, without taking any: it returns (0, nil)
// when a Read would find data.
//
// A tunnel waits here for as long as it is idle, so the frame is kept
// small (the work is in take and ended): a GC shrinks an idle goroutine's
// stack only while it uses under a quarter of it.
func (b *requestBody) Read(p []byte) (int, error) {
	if b.sawEOF {
		return 0, io.EOF
	}
	st := b.st
	c := st.c
	if b.needsContinue {
		b.needsContinue = false
		c.write100Continue(st)
	}
	c.mu.Lock()
	for {
		if st.body.n > 0 {
			if len(p) == 0 {
				c.mu.Unlock()
				return 0, nil
			}
			return b.take(p), nil
		}
		if st.bodyErr != nil {
			return 0, b.ended()
		}
		ch := st.readWaiter()
		c.mu.Unlock()
		<-ch
		c.mu.Lock()
	}
}

// take copies what the body holds into p and gives the window back; c.mu
// is held, and let go.
//
//go:noinline
func (b *requestBody) take(p []byte) int {
	st, c := b.st, b.st.c
	n := st.body.read(p)
	c.windowUpdateLocked(nil, n)
	if !st.recvEnd && !st.closed {
		c.windowUpdateLocked(st, n)
	}
	c.unlock()
	return n
}

// ended is why the body is over, with the trailers handed over at its
// EOF; c.mu is held, and let go.
//
//go:noinline
func (b *requestBody) ended() error {
	st, c := b.st, b.st.c
	err := st.bodyErr
	if err == io.EOF && !b.sawEOF {
		b.sawEOF = true
		for k, vv := range st.trailer {
			if _, ok := st.reqTrailer[k]; ok { // only those it declared
				st.reqTrailer[k] = vv
			}
		}
	}
	c.mu.Unlock()
	return err
}

// Close drops what the body holds and what else arrives for it.
func (b *requestBody) Close() error {
	st := b.st
	c := st.c
	c.mu.Lock()
	if !st.bodyClosed {
		st.bodyClosed = true
		if n := st.body.discard(); n > 0 {
			c.windowUpdateLocked(nil, n)
		}
		if !st.reset {
			st.bodyErr = errBodyClosed
		}
		wake(st.rwake)
	}
	c.unlock()
	return nil
}

// setReadDeadline makes Read fail with os.ErrDeadlineExceeded at t, for
// good (as net/http's does); zero t removes the deadline.
func (c *serverConn) setReadDeadline(st *serverStream, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.rdl != nil {
		st.rdl.Stop()
		st.rdl = nil
	}
	if t.IsZero() {
		return
	}
	expire := func() {
		if st.bodyErr == nil {
			st.bodyErr = fmt.Errorf("h2: request body: %w", os.ErrDeadlineExceeded)
		}
		wake(st.rwake)
	}
	d := time.Until(t)
	if d <= 0 {
		expire()
		return
	}
	var tm *time.Timer
	tm = time.AfterFunc(d, func() {
		c.mu.Lock()
		if st.rdl == tm { // not stopped or replaced meanwhile
			expire()
		}
		c.mu.Unlock()
	})
	st.rdl = tm
}

// setWriteDeadline resets the stream at t if its response is not over,
// as net/http's does; zero t removes the deadline.
func (c *serverConn) setWriteDeadline(st *serverStream, t time.Time) {
	c.mu.Lock()
	if st.wdl != nil {
		st.wdl.Stop()
		st.wdl = nil
	}
	if t.IsZero() {
		c.mu.Unlock()
		return
	}
	expire := func() {
		c.abort(st, http2.ErrCodeInternal, fmt.Errorf("h2: response: %w", os.ErrDeadlineExceeded)) // INTERNAL_ERROR
	}
	d := time.Until(t)
	if d <= 0 {
		c.mu.Unlock()
		expire()
		return
	}
	var tm *time.Timer
	tm = time.AfterFunc(d, func() {
		c.mu.Lock()
		current := st.wdl == tm
		c.mu.Unlock()
		if current {
			expire()
		}
	})
	st.wdl = tm
	c.mu.Unlock()
}
