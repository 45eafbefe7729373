package metrics

import (
	"errors"
	"net"
	"sync/atomic"
)

// ConnCounts counts the connections a listener accepted and those still
// open. Its zero value is ready to use.
type ConnCounts struct {
	accepted atomic.Uint64
	active   atomic.Int64
}

// Accepted is the number of connections accepted so far.
func (c *ConnCounts) Accepted() uint64 { return c.accepted.Load() }

// Active is the number of accepted connections not closed yet.
func (c *ConnCounts) Active() int64 { return c.active.Load() }

// Open counts a connection that is opened in some other way than through
// a Listener; the returned func counts its close, once however often it
// is called.
func (c *ConnCounts) Open() (closed func()) {
	c.accepted.Add(1)
	c.active.Add(1)
	var done atomic.Bool
	return func() {
		if done.CompareAndSwap(false, true) {
			c.active.Add(-1)
		}
	}
}

// Listener counts the connections it accepts in Counts. Its connections
// pass through half-closes and SetLinger to the connection beneath.
type Listener struct {
	net.Listener
	Counts *ConnCounts
}

// Accept waits for a connection and counts it.
func (l Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.Counts.accepted.Add(1)
	l.Counts.active.Add(1)
	return &countedConn{Conn: c, counts: l.Counts}, nil
}

// countedConn is an accepted connection, counted until it is closed.
type countedConn struct {
	net.Conn
	counts *ConnCounts
	closed atomic.Bool
}

func (c *countedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.counts.active.Add(-1)
	}
	return c.Conn.Close()
}

var errNoHalfClose = errors.New("metrics: connection cannot half-close")

// CloseWrite half-closes the connection beneath, if it can.
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errNoHalfClose
}

// SetLinger passes through to the connection beneath, if it has it.
func (c *countedConn) SetLinger(sec int) error {
	if l, ok := c.Conn.(interface{ SetLinger(int) error }); ok {
		return l.SetLinger(sec)
	}
	return errors.New("metrics: connection has no SetLinger")
}
