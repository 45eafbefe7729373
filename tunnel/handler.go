package tunnel

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/porta443/porta/internal/copybuf"
	"github.com/porta443/porta/internal/h2"
	"github.com/porta443/porta/internal/masque"
)

// HandlerConfig configures a Handler. The zero value is a Handler with no
// users, which sends every request to a 404 page.
type HandlerConfig struct {
	// Next serves everything that is not an authenticated proxy request:
	// the website. It sees such requests exactly as they arrived.
	// Nil: http.NotFoundHandler().
	Next http.Handler
	// Probe serves the proxy requests without valid credentials, which
	// must get exactly what Next would answer: a server that counts them
	// apart passes Next wrapped in its counter. Nil: Next.
	Probe http.Handler
	// Users may use the tunnel. Nil: nobody.
	Users *Users
	// Resolver resolves target names. Nil: net.DefaultResolver.
	Resolver Resolver
	// AllowPrivate lets tunnels reach loopback, private, link-local and
	// the server's own addresses (the --allow-private flag).
	AllowPrivate bool
	// DialTimeout bounds resolving and connecting to a target.
	// Zero: 10 seconds.
	DialTimeout time.Duration
	// IdleTimeout closes a tunnel that moved no bytes in either direction
	// for this long. Zero: 5 minutes.
	IdleTimeout time.Duration
	// UDPIdleTimeout closes a CONNECT-UDP flow that carried no datagram
	// either way for this long. Zero: 2 minutes.
	UDPIdleTimeout time.Duration
	// ProxyName names this proxy in Proxy-Status headers. "": "porta".
	ProxyName string
	// Logger receives one debug line per tunnel. Nil: discard.
	Logger *slog.Logger
}

// Handler is the http.Handler the server puts in front of its router, for
// HTTP/1.1, HTTP/2 and HTTP/3 alike. Authenticated proxy requests are
// tunneled; everything else goes to Next untouched.
type Handler struct {
	cfg      HandlerConfig
	next     http.Handler
	probe    http.Handler
	tunneled atomic.Uint64 // authenticated proxy requests
	egress   *egress
	pool     copybuf.Pool
	watch    watcher
	forward  *httputil.ReverseProxy
	tuning   h2.Tuning  // for an authenticated HTTP/2 stream on internal/h2
	authBufs *sync.Pool // of *authBuf
	log      *slog.Logger

	mu     sync.Mutex
	closed bool
	active map[*relay]struct{}
	flows  map[*udpTunnel]struct{}
	udp    udpCounters
	idle   chan struct{} // closed by untrack when active empties; nil while it is empty
	wg     sync.WaitGroup
}

// NewHandler validates cfg and returns a Handler.
func NewHandler(cfg HandlerConfig) (*Handler, error) {
	if cfg.DialTimeout < 0 || cfg.IdleTimeout < 0 || cfg.UDPIdleTimeout < 0 {
		return nil, errors.New("tunnel: negative timeout")
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 5 * time.Minute
	}
	if cfg.UDPIdleTimeout == 0 {
		cfg.UDPIdleTimeout = 2 * time.Minute
	}
	if cfg.ProxyName == "" {
		cfg.ProxyName = "porta"
	}
	h := &Handler{cfg: cfg, next: cfg.Next, log: cfg.Logger, active: map[*relay]struct{}{}, flows: map[*udpTunnel]struct{}{}}
	if h.next == nil {
		h.next = http.NotFoundHandler()
	}
	h.probe = cfg.Probe
	if h.probe == nil {
		h.probe = h.next
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.egress = &egress{
		resolver:     cfg.Resolver,
		allowPrivate: cfg.AllowPrivate,
		dialTimeout:  cfg.DialTimeout,
		prefixes:     prohibitedPrefixes(),
		own:          sync.OnceValue(interfaceAddrs),
	}
	h.forward = h.newForwarder()
	h.tuning = ServerHTTP2Tuning()
	h.authBufs = newAuthBufs()
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rl := h.serve(w, r)
	if rl == nil {
		return
	}
	// An HTTP/2 tunnel. net/http keeps this goroutine for the life of the
	// stream, and the upload waits on it: a read into an empty buffer
	// waits until the request body has data, or ends, without holding a
	// buffer (then uploadReady reads). It waits here, as few frames from
	// the top as possible: a GC shrinks an idle goroutine's stack only
	// while it uses under a quarter of it, and waiting any deeper would
	// keep 8 KiB per idle tunnel rather than 4.
	for {
		_, err := r.Body.Read(nil)
		if !rl.uploadReady(err) {
			break
		}
	}
	rl.end()
}

// serve answers r, or sets up an HTTP/2 tunnel and returns its relay,
// whose upload the caller runs and ends (see ServeHTTP).
func (h *Handler) serve(w http.ResponseWriter, r *http.Request) *relay {
	us, ok := h.credentials(r) // for every request alike: see credentials
	if !isProxyRequest(r) {
		h.next.ServeHTTP(w, r)
		return nil
	}
	if !ok { // exactly one valid Proxy-Authorization, or the request is not ours
		h.probe.ServeHTTP(w, r)
		return nil
	}
	// From here on the client has proved who it is and gets real errors.
	h.tunneled.Add(1)
	if r.TLS != nil && !r.TLS.HandshakeComplete {
		// 0-RTT early data can be replayed by anyone who recorded it, and
		// a tunnel's first bytes are not idempotent (RFC 8470).
		writeProxyError(w, r, h.cfg.ProxyName, errTooEarly)
		return nil
	}
	if err := h.begin(); err != nil {
		writeProxyError(w, r, h.cfg.ProxyName, err)
		return nil
	}
	if err := us.acquire(); err != nil {
		h.wg.Done()
		writeProxyError(w, r, h.cfg.ProxyName, err)
		return nil
	}
	if t, ok := w.(h2.Tuner); ok {
		// Only now that the client proved who it is may its stream and
		// connection differ from what everyone is offered.
		t.Tune(h.tuning)
	}
	// What begin and acquire took is given back once the tunnel is over:
	// here, or by the relay the tunnel was handed to (relay.end).
	handedOff := false
	defer func() { // deferred: an HTTP/2 reset panics with http.ErrAbortHandler
		if !handedOff {
			h.release(us)
		}
	}()
	if isUDPRequest(r) {
		h.serveUDP(w, r, us)
		return nil
	}
	if r.Method == http.MethodConnect {
		rl, detached := h.serveConnect(w, r, us)
		handedOff = detached || rl != nil
		return rl
	}
	h.serveForward(w, r, us)
	return nil
}

// isProxyRequest reports whether r asks to be proxied: a CONNECT on any
// version, or an HTTP/1 request in absolute form.
//
// On HTTP/2 and HTTP/3 a browser sends a plain-http request to its HTTPS
// proxy as an ordinary request whose :authority is the origin, and neither
// net/http nor quic-go shows the handler its :scheme. Such a request is
// proxy-shaped when it names a host other than the one the client asked
// for in TLS (SNI); it is tunneled only if its credentials are valid, so
// everyone else still reaches the website with it.
func isProxyRequest(r *http.Request) bool {
	if r.Method == http.MethodConnect {
		return true
	}
	if r.ProtoMajor == 1 {
		return r.URL.IsAbs()
	}
	return isForeignHost(r)
}

// isForeignHost reports whether r's host differs from its TLS server name.
func isForeignHost(r *http.Request) bool {
	if r.TLS == nil || r.TLS.ServerName == "" || r.Host == "" {
		return false
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return !strings.EqualFold(strings.TrimSuffix(host, "."), strings.TrimSuffix(r.TLS.ServerName, "."))
}

var errClosed = errors.New("tunnel: handler is closed")

var errNotSupported = errors.New("tunnel: not supported")

var errTooEarly = errors.New("tunnel: proxy request in TLS early data")

func (h *Handler) begin() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errClosed
	}
	h.wg.Add(1)
	return nil
}

// Close aborts every open tunnel, waits for their handlers to return and
// stops the goroutine that waits for idle tunnels' targets. Requests that
// arrive later are answered with an error (authenticated) or passed to
// Next as always (everyone else).
func (h *Handler) Close() error {
	h.mu.Lock()
	h.closed = true
	for rl := range h.active {
		rl.abort(errClosed)
	}
	h.closeUDPLocked()
	h.mu.Unlock()
	h.wg.Wait()
	h.watch.close()
	return nil
}

// release gives back what begin and us.acquire took.
func (h *Handler) release(us *user) {
	us.release()
	h.wg.Done()
}

func (h *Handler) track(rl *relay) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	if h.idle == nil {
		h.idle = make(chan struct{})
	}
	h.active[rl] = struct{}{}
	return true
}

func (h *Handler) untrack(rl *relay) {
	h.mu.Lock()
	delete(h.active, rl)
	if len(h.active) == 0 && h.idle != nil {
		close(h.idle)
		h.idle = nil
	}
	h.mu.Unlock()
}

// Tunneled reports how many authenticated proxy requests the Handler has
// taken, refused ones included (too many streams, early data).
func (h *Handler) Tunneled() uint64 { return h.tunneled.Load() }

// Active reports how many tunnels are open.
func (h *Handler) Active() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.active)
}

// WaitIdle returns once no tunnel is open, or with ctx's error if ctx ends
// first. A server calls it while shutting down, for the tunnels that
// outlive their HTTP server (HTTP/1.1 CONNECT, whose connections are
// hijacked).
func (h *Handler) WaitIdle(ctx context.Context) error {
	for {
		h.mu.Lock()
		idle := h.idle
		h.mu.Unlock()
		if idle == nil {
			return nil
		}
		select {
		case <-idle: // and look again: another may have opened since
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// localAddr is the server address r arrived on, if known.
func localAddr(r *http.Request) netip.Addr {
	a, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if a == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr()
}

// logf logs at debug, the only level that may name a target.
func (h *Handler) logf(r *http.Request, us *user, msg string, err error) {
	if !h.log.Enabled(r.Context(), slog.LevelDebug) {
		return // no work for a line nobody keeps (a UDP target is parsed)
	}
	target := r.Host
	if isUDPRequest(r) {
		target, _ = masque.Target(r.URL.Path)
	}
	if err != nil {
		h.log.Debug(msg, "user", us.name, "target", target, "proto", r.Proto, "err", err)
		return
	}
	h.log.Debug(msg, "user", us.name, "target", target, "proto", r.Proto)
}
