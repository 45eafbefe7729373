package h2

import (
	"time"

	"golang.org/x/net/http2"
)

// Tuner is implemented by the ResponseWriter of this package's server. A
// handler that knows its client (one that authenticated, say) can give
// its stream and connection more than the server offers everyone: the
// server can then offer everyone what a stock server does.
type Tuner interface {
	Tune(Tuning)
}

// Tuning is what Tune grows; zero fields are left as they are, nothing is
// ever made smaller, and nothing grows past what the http.Server's HTTP2
// config sets, where it sets it.
type Tuning struct {
	// StreamWindow is the stream's receive window (a WINDOW_UPDATE on
	// the stream grows it).
	StreamWindow int32
	// ConnWindow is the connection's receive window (a WINDOW_UPDATE
	// on stream 0).
	ConnWindow int32
	// MaxStreams is the connection's SETTINGS_MAX_CONCURRENT_STREAMS (a
	// SETTINGS frame), and with it the handlers that may run at once.
	MaxStreams uint32
	// SendPingTimeout and PingTimeout start the connection's health
	// check, as http.HTTP2Config's fields of those names do, unless one
	// runs.
	SendPingTimeout, PingTimeout time.Duration
	// Pad pads the stream's first DATA frames (see padding).
	Pad bool
}

// Tune grows what t names for the stream and its connection.
func (rw *responseWriter) Tune(t Tuning) { rw.c.tune(rw.st, t) }

func (c *serverConn) tune(st *serverStream, t Tuning) {
	t.StreamWindow = capped(t.StreamWindow, c.set.capStreamWindow)
	t.ConnWindow = capped(t.ConnWindow, c.set.capConnWin)
	t.MaxStreams = capped(t.MaxStreams, c.set.capStreams)
	c.mu.Lock()
	defer c.unlock()
	if c.err != nil {
		return
	}
	if t.StreamWindow > st.window && !st.recvEnd && !st.reset {
		grow := t.StreamWindow - st.window
		st.window = t.StreamWindow
		st.inflow.avail += grow
		c.sendLocked(control{kind: http2.FrameWindowUpdate, id: st.id, val: uint32(grow)})
	}
	if t.ConnWindow > c.window {
		grow := t.ConnWindow - c.window
		c.window = t.ConnWindow
		c.inflow.avail += grow
		c.sendLocked(control{kind: http2.FrameWindowUpdate, val: uint32(grow)})
	}
	if t.MaxStreams > c.set.maxStreams {
		c.set.maxStreams = t.MaxStreams
		c.unacked++
		c.sendLocked(control{kind: http2.FrameSettings, sets: []http2.Setting{{ID: http2.SettingMaxConcurrentStreams, Val: t.MaxStreams}}})
	}
	if t.Pad && !st.pad.on {
		st.pad = newPadding()
	}
	if t.SendPingTimeout > 0 && c.health == nil {
		c.set.sendPingTimeout = t.SendPingTimeout
		if t.PingTimeout > 0 {
			c.set.pingTimeout = t.PingTimeout
		}
		c.healthSeen = c.reads.Load()
		c.health = time.AfterFunc(c.set.sendPingTimeout, c.checkHealth)
	}
}

// capped is v, but no more than limit if limit is set.
func capped[T int32 | uint32](v, limit T) T {
	if limit > 0 {
		return min(v, limit)
	}
	return v
}
