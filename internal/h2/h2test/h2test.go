// Package h2test holds scripted HTTP/2 servers for testing clients: real
// TLS on 127.0.0.1, and frames that a test's script writes with
// x/net/http2's Framer, well-formed or not.
package h2test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/porta443/porta/internal/testenv"
	"golang.org/x/net/http2"
)

// Script is what a scripted server does on each connection.
type Script struct {
	// Preface is what the server sends first. Nil: an empty SETTINGS.
	Preface func(c *Conn) error
	// NoAck leaves the client's SETTINGS unacknowledged.
	NoAck bool
	// Run runs once the client's first HEADERS came, with its stream ID.
	// After it returns the server reads (and acknowledges SETTINGS) until
	// the connection ends.
	Run func(c *Conn, id uint32)
}

// Server accepts TLS connections that negotiate h2 and runs its script on
// each. It stops at the test's cleanup.
type Server struct {
	Addr      string
	Cert      *testenv.Cert
	reactions chan Reaction
}

// Reaction is a frame the client sent that ends something, or the end
// of the connection (Closed).
type Reaction struct {
	Type     http2.FrameType // http2.FrameRSTStream or http2.FrameGoAway
	StreamID uint32
	Code     http2.ErrCode
	Closed   bool
}

// NewServer serves script on 127.0.0.1.
func NewServer(t testing.TB, script Script) *Server {
	t.Helper()
	cert := testenv.NewCert(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert.TLS}, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: ln.Addr().String(), Cert: cert, reactions: make(chan Reaction, 64)}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Go(func() { s.serve(nc, script) })
		}
	})
	return s
}

// ClientTLS is a client configuration that trusts the server and asks
// for h2.
func (s *Server) ClientTLS() *tls.Config { return s.Cert.ClientTLS("h2") }

// Reactions are how clients reacted, in order: the RST_STREAM and GOAWAY
// frames they sent, and the ends of connections.
func (s *Server) Reactions() <-chan Reaction { return s.reactions }

func (s *Server) react(r Reaction) {
	select {
	case s.reactions <- r:
	default: // nobody is looking
	}
}

func (s *Server) serve(nc net.Conn, script Script) {
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.ReadFull(nc, make([]byte, len(http2.ClientPreface))); err != nil {
		return
	}
	c := newConn(s, nc, script.NoAck)
	preface := script.Preface
	if preface == nil {
		preface = func(c *Conn) error { return c.WriteSettings() }
	}
	if preface(c) != nil {
		return
	}
	id, err := c.NextHeaders()
	if err != nil {
		return
	}
	if script.Run != nil {
		script.Run(c, id)
	}
	for {
		if _, err := c.Next(); err != nil {
			return
		}
	}
}

// Conn is the server's end of one connection, for a script. Its Framer
// lets the script write frames that break the rules.
type Conn struct {
	net.Conn
	frames
	srv   *Server
	noAck bool
}

func newConn(srv *Server, nc net.Conn, noAck bool) *Conn {
	c := &Conn{Conn: nc, srv: srv, noAck: noAck}
	c.frames = newFrames(nc)
	c.Framer.AllowIllegalWrites = true
	c.Framer.MaxHeaderListSize = 1 << 20
	return c
}

// Close ends the connection the way a server that means it does: it
// ends its side, reads what the client still sends until the client
// closes (two seconds at most), then closes. Closing at once with the
// client's bytes unread makes the kernel send a reset, and a reset can
// throw away frames the script wrote before the client read them.
func (c *Conn) Close() error {
	if tc, ok := c.Conn.(*tls.Conn); ok {
		tc.CloseWrite()
	}
	c.Conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	io.Copy(io.Discard, c.Conn)
	return c.Conn.Close()
}

// Next reads the client's next frame, acknowledging SETTINGS and
// reporting reactions.
func (c *Conn) Next() (http2.Frame, error) {
	f, err := c.ReadFrame()
	if err != nil {
		c.srv.react(Reaction{Closed: true})
		return nil, err
	}
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if !f.IsAck() && !c.noAck {
			if err := c.WriteSettingsAck(); err != nil {
				c.srv.react(Reaction{Closed: true})
				return nil, err
			}
		}
	case *http2.RSTStreamFrame:
		c.srv.react(Reaction{Type: f.Type, StreamID: f.StreamID, Code: f.ErrCode})
	case *http2.GoAwayFrame:
		c.srv.react(Reaction{Type: f.Type, Code: f.ErrCode})
	}
	return f, nil
}

// NextHeaders reads until the client's next HEADERS and returns its
// stream ID.
func (c *Conn) NextHeaders() (uint32, error) {
	for {
		f, err := c.Next()
		if err != nil {
			return 0, err
		}
		if h, ok := f.(*http2.MetaHeadersFrame); ok {
			return h.StreamID, nil
		}
	}
}

// NextData reads until the client's next DATA and returns it (valid
// until the next read).
func (c *Conn) NextData() (*http2.DataFrame, error) {
	for {
		f, err := c.Next()
		if err != nil {
			return nil, err
		}
		if d, ok := f.(*http2.DataFrame); ok {
			return d, nil
		}
	}
}

// Respond sends a response's HEADERS with status on stream id.
func (c *Conn) Respond(id uint32, status string) error {
	return c.Headers(id, false, ":status", status)
}

// ErrNoReaction is what WaitReaction returns when the client did not
// react in time.
var ErrNoReaction = errors.New("h2test: the client did not react")

// WaitReaction waits up to d for the next reaction.
func (s *Server) WaitReaction(d time.Duration) (Reaction, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case r := <-s.reactions:
		return r, nil
	case <-t.C:
		return Reaction{}, ErrNoReaction
	}
}
