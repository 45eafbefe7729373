package h2

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// Server serves HTTP/2 for an http.Server in place of net/http's own, for
// the connections whose TLS handshake chose "h2". It takes its settings
// from the http.Server exactly as net/http does (HTTP2, MaxHeaderBytes,
// IdleTimeout, ReadTimeout, WriteTimeout), so that a client sees the
// same SETTINGS, windows and header order from either.
//
// What it adds: a response can end while its request body still flows
// (see [CloseWriter]), and a stream can be reset with a chosen code (see
// [Resetter]); net/http's server can do neither.
//
// Build one per http.Server and install it with ConfigureServer.
type Server struct {
	// EnableConnectProtocol advertises SETTINGS_ENABLE_CONNECT_PROTOCOL
	// and accepts extended CONNECT (RFC 8441), whose :protocol the
	// handler finds in Request.Header[":protocol"], as net/http puts it.
	// False, as net/http's default: a :protocol is a stream error.
	EnableConnectProtocol bool
	// Logger receives connection errors at debug level. Nil: discard.
	Logger *slog.Logger

	mu     sync.Mutex
	conns  map[*serverConn]struct{}
	closed bool // the http.Server is shutting down

	// Timeouts net/http fixes (10 s for the preface, 2 s more for the
	// first SETTINGS, 1 s from a GOAWAY to the close); zero is those.
	// Tests shorten them.
	prefaceTimeout, settingsTimeout, goAwayTimeout time.Duration

	dateCache atomic.Pointer[dateText]
	buffers   sync.Pool // response buffers, *bufio.Writer
	snapshots sync.Pool // *headerSnapshot
	chunks    sync.Pool // request body chunks, *[]byte
}

// CloseWriter is implemented by the ResponseWriter of this package's
// server. CloseWrite ends the response (END_STREAM after what was
// written, and the trailers if any) while the handler goes on reading
// the request body: an HTTP/2 half-close.
type CloseWriter interface {
	CloseWrite() error
}

// Resetter is implemented by the ResponseWriter of this package's
// server. Reset ends the stream at once with RST_STREAM and code, from
// any goroutine; blocked reads and writes of the handler return.
type Resetter interface {
	Reset(code http2.ErrCode)
}

// ConfigureServer makes hs serve HTTP/2 with s: it installs s in
// hs.TLSNextProto (which keeps net/http from configuring its own) and
// has hs.Shutdown send GOAWAY on s's connections. hs.Protocols must
// include HTTP/2, or its TLS listener does not offer "h2".
func (s *Server) ConfigureServer(hs *http.Server) error {
	if hs.TLSNextProto == nil {
		hs.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	if _, ok := hs.TLSNextProto["h2"]; ok {
		return errors.New("h2: the http.Server already has an HTTP/2 server")
	}
	hs.TLSNextProto["h2"] = s.serveTLS
	hs.RegisterOnShutdown(s.shutdown)
	return nil
}

// serveTLS serves one connection until it ends; net/http calls it on the
// connection's goroutine, with a handler that carries the connection's
// base context and sets what net/http sets on every request.
//
// The requests go to hs's handler as net/http would send them (see
// serverHandler), not through h: h's ServeHTTP fills in what each
// request here has already (TLS, Body, RemoteAddr), and its frame, with
// room for a tls.ConnectionState, would stay on the stack of every
// handler, such as a tunnel's, for as long as it waits.
func (s *Server) serveTLS(hs *http.Server, c *tls.Conn, h http.Handler) {
	ctx := context.Background()
	if bc, ok := h.(interface{ BaseContext() context.Context }); ok {
		ctx = bc.BaseContext()
	}
	state := c.ConnectionState()
	sc := newServerConn(s, hs, c, &state, serverHandler(hs), ctx)
	if !s.track(sc) {
		c.Close()
		return
	}
	defer s.untrack(sc)
	sc.serve()
}

// serverHandler is hs's handler, or http.DefaultServeMux, as net/http's
// serverHandler picks it.
func serverHandler(hs *http.Server) http.Handler {
	if hs.Handler == nil {
		return http.DefaultServeMux
	}
	return hs.Handler
}

// optionsStar answers "OPTIONS *" as net/http's server does (its
// globalOptionsHandler), unless hs.DisableGeneralOptionsHandler.
func optionsStar(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Length", "0")
	if r.ContentLength != 0 {
		// Up to 4 KiB of body is read (reserved for future use, says
		// the spec), and more ends the stream.
		io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 4<<10))
	}
}

func (s *Server) track(sc *serverConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*serverConn]struct{})
	}
	s.conns[sc] = struct{}{}
	return true
}

func (s *Server) untrack(sc *serverConn) {
	s.mu.Lock()
	delete(s.conns, sc)
	s.mu.Unlock()
}

// shutdown sends GOAWAY on every connection; each closes once its
// streams are over. hs.Shutdown waits for that, hs.Close cuts it short.
func (s *Server) shutdown() {
	s.mu.Lock()
	s.closed = true
	conns := make([]*serverConn, 0, len(s.conns))
	for sc := range s.conns {
		conns = append(conns, sc)
	}
	s.mu.Unlock()
	for _, sc := range conns {
		sc.goAway(http2.ErrCodeNo)
	}
}

// settings are a connection's limits, from the http.Server as net/http
// reads them (net/http's configFromServer and setConfigDefaults).
type settings struct {
	maxStreams       uint32
	maxFrame         uint32 // SETTINGS_MAX_FRAME_SIZE we read
	streamWindow     int32  // SETTINGS_INITIAL_WINDOW_SIZE
	connWindow       int32  // the connection's receive window
	maxHeaderList    uint32
	encoderTable     uint32
	decoderTable     uint32
	idleTimeout      time.Duration
	readTimeout      time.Duration
	writeTimeout     time.Duration
	sendPingTimeout  time.Duration
	pingTimeout      time.Duration
	writeByteTimeout time.Duration
	// What the http.Server's HTTP2 sets explicitly bounds what Tune may
	// grow (0: nothing set).
	capStreams                  uint32
	capStreamWindow, capConnWin int32
}

const (
	initialWindow   = 65535 // RFC 9113 §6.9.2
	maxWindow       = 1<<31 - 1
	minFrame        = 16384
	maxFrameLimit   = 1<<24 - 1
	initialTable    = 4096
	defaultStreams  = 250
	defaultFrame    = 1 << 20
	defaultWindow   = 1 << 20
	headerSlop      = 10 * 32 // net/http's adjustHTTP1MaxHeaderSize
	prefaceTimeout  = 10 * time.Second
	settingsTimeout = 2 * time.Second
	goAwayTimeout   = time.Second // after GOAWAY, time for the peer to read it before the close
	clientPreface   = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	handlerChunk    = 4 << 10 // the response buffer: net/http's handlerChunkWriteSize
)

func settingsFrom(hs *http.Server) settings {
	st := settings{
		maxStreams:    defaultStreams,
		maxFrame:      defaultFrame,
		streamWindow:  defaultWindow,
		connWindow:    defaultWindow,
		encoderTable:  initialTable,
		decoderTable:  initialTable,
		idleTimeout:   hs.IdleTimeout,
		readTimeout:   hs.ReadTimeout,
		writeTimeout:  hs.WriteTimeout,
		pingTimeout:   15 * time.Second,
		maxHeaderList: headerList(hs.MaxHeaderBytes),
	}
	if st.idleTimeout == 0 {
		st.idleTimeout = hs.ReadTimeout
	}
	if c := hs.HTTP2; c != nil {
		setIn(&st.maxStreams, c.MaxConcurrentStreams, 1, math.MaxUint32)
		setIn(&st.capStreams, c.MaxConcurrentStreams, 1, math.MaxUint32)
		setIn(&st.capStreamWindow, c.MaxReceiveBufferPerStream, 1, maxWindow)
		setIn(&st.capConnWin, c.MaxReceiveBufferPerConnection, initialWindow, maxWindow)
		setIn(&st.encoderTable, c.MaxEncoderHeaderTableSize, 1, math.MaxUint32)
		setIn(&st.decoderTable, c.MaxDecoderHeaderTableSize, 1, math.MaxUint32)
		setIn(&st.maxFrame, c.MaxReadFrameSize, minFrame, maxFrameLimit)
		setIn(&st.connWindow, c.MaxReceiveBufferPerConnection, initialWindow, maxWindow)
		setIn(&st.streamWindow, c.MaxReceiveBufferPerStream, 1, maxWindow)
		if c.SendPingTimeout > 0 {
			st.sendPingTimeout = c.SendPingTimeout
		}
		if c.PingTimeout > 0 {
			st.pingTimeout = c.PingTimeout
		}
		if c.WriteByteTimeout > 0 {
			st.writeByteTimeout = c.WriteByteTimeout
		}
	}
	return st
}

func headerList(maxHeaderBytes int) uint32 {
	if maxHeaderBytes <= 0 {
		maxHeaderBytes = http.DefaultMaxHeaderBytes
	}
	return uint32(min(int64(maxHeaderBytes)+headerSlop, math.MaxUint32))
}

// setIn sets *dst to v when v is within [lo, hi]; out of range, the
// default stays, as net/http's setDefault does.
func setIn[T ~uint32 | ~int32](dst *T, v int, lo, hi int64) {
	if int64(v) >= lo && int64(v) <= hi {
		*dst = T(v)
	}
}
