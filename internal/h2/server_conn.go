package h2

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// serverConn is one HTTP/2 connection served by a Server. Its read loop
// runs on the goroutine net/http gave the connection; each request's
// handler runs on a goroutine of its own, owned by the connection, which
// waits for all of them before it returns.
type serverConn struct {
	srv      *Server
	hs       *http.Server
	conn     net.Conn
	handler  http.Handler
	baseCtx  context.Context
	tlsState *tls.ConnectionState
	remote   string
	set      settings
	fr       *http2.Framer
	hr       *headerReader // the read loop's
	w        *frameWriter
	log      *slog.Logger
	canon    canonCache // the read loop's

	done      chan struct{} // closed when the connection ends
	handlers  sync.WaitGroup
	reads     atomic.Uint64 // frames read, for the health check
	closeOnce sync.Once
	idle      *time.Timer // nil without an idle timeout
	health    *time.Timer // nil without SendPingTimeout

	mu          sync.Mutex
	err         error // why the connection ended; nil while it lives
	streams     map[uint32]*serverStream
	maxClientID uint32
	running     int                  // handlers running
	waiting     []*serverStream      // streams whose handlers wait for one to end
	idleWorkers []chan *serverStream // goroutines waiting for a handler to run
	inflow      inflow
	window      int32 // the connection's receive window: the configured one, or more (Tune)
	outflow     int64
	peerWindow  int32 // the client's SETTINGS_INITIAL_WINDOW_SIZE
	peerFrame   int   // the client's SETTINGS_MAX_FRAME_SIZE
	unacked     int   // our SETTINGS not yet acknowledged
	inGoAway    bool
	goAwayCode  http2.ErrCode
	closeTimer  *time.Timer
	blocked     map[*serverStream]struct{} // writers waiting for window
	pingSent    bool
	pingData    [8]byte
	healthSeen  uint64        // c.reads when the health check last looked
	sawSettings bool          // the read loop's
	outbox      []control     // to send once mu is let go: see sendLocked
	rng         *rand.ChaCha8 // padding lengths
}

// newServerConn prepares to serve c, whose TLS handshake gave state.
func newServerConn(srv *Server, hs *http.Server, c net.Conn, state *tls.ConnectionState, h http.Handler, ctx context.Context) *serverConn {
	log := srv.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sc := &serverConn{
		srv:        srv,
		hs:         hs,
		conn:       c,
		handler:    h,
		baseCtx:    ctx,
		tlsState:   state,
		remote:     c.RemoteAddr().String(),
		set:        settingsFrom(hs),
		log:        log,
		done:       make(chan struct{}),
		streams:    make(map[uint32]*serverStream),
		outflow:    initialWindow,
		peerWindow: initialWindow,
		peerFrame:  minFrame,
		blocked:    make(map[*serverStream]struct{}),
	}
	sc.inflow.avail = initialWindow
	sc.rng = newRand()
	var out io.Writer = c
	if sc.set.writeByteTimeout > 0 {
		out = &deadlineWriter{conn: c, timeout: sc.set.writeByteTimeout}
	}
	sc.w = newFrameWriter(out, sc.fail)
	sc.w.henc.SetMaxDynamicTableSizeLimit(sc.set.encoderTable)
	sc.fr = http2.NewFramer(sc.w.bw, c)
	sc.hr = newHeaderReader(sc.fr, sc.set.decoderTable, sc.set.maxHeaderList)
	sc.fr.SetMaxReadFrameSize(sc.set.maxFrame)
	sc.w.fr = sc.fr
	return sc
}

// serve runs the connection until it ends.
func (c *serverConn) serve() {
	defer c.finish()
	if !usableTLS(c.tlsState) {
		// RFC 9113 §9.2: TLS 1.2 or later, without the prohibited suites.
		c.w.control(control{kind: http2.FrameGoAway, val: uint32(http2.ErrCodeInadequateSecurity)})
		return
	}
	sets := []http2.Setting{
		{ID: http2.SettingMaxFrameSize, Val: c.set.maxFrame},
		{ID: http2.SettingMaxConcurrentStreams, Val: c.set.maxStreams},
		{ID: http2.SettingMaxHeaderListSize, Val: c.set.maxHeaderList},
		{ID: http2.SettingHeaderTableSize, Val: c.set.decoderTable},
		{ID: http2.SettingInitialWindowSize, Val: uint32(c.set.streamWindow)},
	}
	if c.srv.EnableConnectProtocol {
		sets = append(sets, http2.Setting{ID: http2.SettingEnableConnectProtocol, Val: 1})
	}
	c.unacked++
	c.w.control(control{kind: http2.FrameSettings, sets: sets})
	if err := c.readPreface(); err != nil {
		c.log.Debug("h2: reading the client preface", "remote", c.remote, "err", err)
		return
	}
	c.window = initialWindow
	if diff := c.set.connWindow - initialWindow; diff > 0 {
		c.window = c.set.connWindow
		c.inflow.avail += diff
		c.w.control(control{kind: http2.FrameWindowUpdate, val: uint32(diff)})
	}
	if c.set.idleTimeout > 0 {
		c.idle = time.AfterFunc(c.set.idleTimeout, c.onIdle)
	}
	if c.set.sendPingTimeout > 0 {
		c.mu.Lock()
		c.health = time.AfterFunc(c.set.sendPingTimeout, c.checkHealth)
		c.mu.Unlock()
	}
	c.conn.SetReadDeadline(time.Now().Add(orDefault(c.srv.settingsTimeout, settingsTimeout))) // for the first SETTINGS
	for {
		f, err := c.fr.ReadFrame()
		if hf, ok := f.(*http2.HeadersFrame); ok && err == nil {
			f, err = c.hr.read(hf)
		}
		if err != nil {
			var se http2.StreamError
			if !errors.As(err, &se) {
				// The Framer (or the header decoder) may be in the
				// middle of something: read no more, as net/http's
				// server does not. A GOAWAY for a
				// connection error closes the connection shortly.
				if c.handleError(err) {
					<-c.done
				}
				return
			}
		} else {
			c.reads.Add(1)
			if err = c.processFrame(f); err == nil {
				continue
			}
		}
		if !c.handleError(err) {
			return
		}
	}
}

func (c *serverConn) readPreface() error {
	c.conn.SetReadDeadline(time.Now().Add(orDefault(c.srv.prefaceTimeout, prefaceTimeout)))
	buf := make([]byte, len(clientPreface))
	if _, err := io.ReadFull(c.conn, buf); err != nil {
		return err
	}
	if string(buf) != clientPreface {
		return fmt.Errorf("h2: bogus client preface %q", buf)
	}
	return nil
}

// handleError acts on what reading or processing a frame returned, and
// reports whether the read loop goes on.
func (c *serverConn) handleError(err error) bool {
	var se http2.StreamError
	var ce http2.ConnectionError
	switch {
	case errors.As(err, &se):
		c.resetStream(se.StreamID, se.Code)
		return true
	case errors.As(err, &ce):
		c.log.Debug("h2: connection error", "remote", c.remote, "err", err, "detail", c.fr.ErrorDetail())
		c.goAway(http2.ErrCode(ce))
		return true
	case errors.Is(err, http2.ErrFrameTooLarge):
		c.goAway(http2.ErrCodeFrameSize)
		return true
	case errors.Is(err, os.ErrDeadlineExceeded) && !c.sawSettings:
		c.log.Debug("h2: no SETTINGS from the client", "remote", c.remote)
		return false
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		c.log.Debug("h2: connection ended", "remote", c.remote, "err", err)
	}
	return false
}

// goAway sends GOAWAY once. With NO_ERROR (a graceful end: shutdown,
// idle, the client's GOAWAY) streams already open run on and the
// connection closes after the last; with an error it closes shortly.
func (c *serverConn) goAway(code http2.ErrCode) {
	c.mu.Lock()
	if c.inGoAway || c.err != nil {
		if c.goAwayCode == http2.ErrCodeNo && code != http2.ErrCodeNo {
			c.goAwayCode = code
			c.closeSoon()
		}
		c.mu.Unlock()
		return
	}
	c.inGoAway = true
	c.goAwayCode = code
	last := c.maxClientID
	if code != http2.ErrCodeNo || len(c.streams) == 0 {
		c.closeSoon()
	}
	c.mu.Unlock()
	c.w.control(control{kind: http2.FrameGoAway, id: last, val: uint32(code)})
}

// closeSoon closes the connection after goAwayTimeout, time for the peer
// to read the GOAWAY before a close that might reset it; c.mu is held.
func (c *serverConn) closeSoon() {
	if c.closeTimer == nil {
		c.closeTimer = time.AfterFunc(orDefault(c.srv.goAwayTimeout, goAwayTimeout), func() { c.fail(errGoneAway) })
	}
}

var errGoneAway = errors.New("h2: connection closed after GOAWAY")

// fail ends the connection with err, once: the socket is closed, and
// every stream's reads and writes return err.
func (c *serverConn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	streams := make([]*serverStream, 0, len(c.streams))
	for _, st := range c.streams {
		streams = append(streams, st)
	}
	c.waiting = nil
	for _, w := range c.idleWorkers {
		close(w)
	}
	c.idleWorkers = nil
	for _, st := range streams {
		c.endStreamLocked(st, errClientGone)
	}
	if c.closeTimer != nil {
		c.closeTimer.Stop()
	}
	c.mu.Unlock()
	close(c.done)
	c.conn.Close()
}

// finish ends the connection when the read loop is over and waits for
// the handlers, whose reads and writes now fail.
func (c *serverConn) finish() {
	c.fail(errClientGone)
	c.mu.Lock()
	if c.idle != nil {
		c.idle.Stop()
	}
	if c.health != nil {
		c.health.Stop()
	}
	c.mu.Unlock()
	c.handlers.Wait()
}

// onIdle closes a connection with no stream open for the idle timeout.
func (c *serverConn) onIdle() {
	c.mu.Lock()
	busy := len(c.streams) > 0 || c.running > 0
	c.mu.Unlock()
	if !busy {
		c.goAway(http2.ErrCodeNo)
	}
}

// checkHealth runs when SendPingTimeout passed (or PingTimeout after a
// PING): if no frame came meanwhile it sends a PING, and if none came by
// the PingTimeout after that, it closes the connection.
func (c *serverConn) checkHealth() {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	if now := c.reads.Load(); now != c.healthSeen {
		c.healthSeen, c.pingSent = now, false
		c.health.Reset(c.set.sendPingTimeout)
		c.mu.Unlock()
		return
	}
	if c.pingSent {
		c.mu.Unlock()
		c.log.Debug("h2: no answer to PING", "remote", c.remote)
		c.fail(errors.New("h2: no answer to PING"))
		return
	}
	c.pingSent = true
	crand.Read(c.pingData[:])
	data := c.pingData
	c.health.Reset(c.set.pingTimeout)
	c.mu.Unlock()
	c.w.control(control{kind: http2.FramePing, data: data})
}

// usableTLS reports whether s meets RFC 9113 §9.2: TLS 1.3, or TLS 1.2
// with an ephemeral key exchange and an AEAD cipher.
func usableTLS(s *tls.ConnectionState) bool {
	if s.Version >= tls.VersionTLS13 {
		return true
	}
	if s.Version < tls.VersionTLS12 {
		return false
	}
	switch s.CipherSuite {
	case tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:
		return true
	}
	return false
}

// deadlineWriter bounds each write to the connection by timeout, renewed
// while bytes move (http.HTTP2Config.WriteByteTimeout).
type deadlineWriter struct {
	conn    net.Conn
	timeout time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		d.conn.SetWriteDeadline(time.Now().Add(d.timeout))
		k, err := d.conn.Write(p[n:])
		n += k
		if err != nil && (k == 0 || !errors.Is(err, os.ErrDeadlineExceeded)) {
			return n, err
		}
	}
	return n, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
