package httpproxy

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"

	"github.com/porta443/porta/internal/relay"
)

// DialFunc opens a connection to a target; see relay.DialFunc.
type DialFunc = relay.DialFunc

// Establisher is implemented by a connection that Dial returns before the
// target answered; see Config.NoFastOpen.
type Establisher = relay.Establisher

// Config configures a Server. The zero value of each field is its default.
type Config struct {
	// Dial reaches targets, for CONNECT and for absolute-form requests.
	// Required.
	//
	// With fast open (the default), a CONNECT is answered 200 as soon as
	// Dial returns, and a failure that the connection reports later, on its
	// first Read or Write, closes the client's connection.
	Dial DialFunc
	// NoFastOpen makes CONNECT wait for the target's answer before the 200:
	// if the connection Dial returns is an Establisher, its Established
	// error is the answer, and an error becomes a 502 (403, 504).
	NoFastOpen bool
	// PACProxies is what the PAC file's FindProxyForURL returns for every
	// host but local ones, e.g. {"PROXY 127.0.0.1:8080", "SOCKS5
	// 127.0.0.1:1080"}. Nil: "PROXY" and the address the PAC was fetched
	// from, that is this proxy.
	PACProxies []string
	// PAC, if set, is the whole PAC file, served as is; it may not be set
	// together with PACProxies.
	PAC string
	// ReadHeaderTimeout bounds reading a request's header. Zero: 10 seconds.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a client's keep-alive connection after this long
	// without a request. Zero: 2 minutes.
	IdleTimeout time.Duration
	// DialTimeout bounds Dial, and with NoFastOpen the wait for the
	// target's answer. Zero: 30 seconds.
	DialTimeout time.Duration
	// MaxHeaderBytes bounds a request's header. Zero: 64 KiB.
	MaxHeaderBytes int
	// Logger receives per-request events at debug level. Nil: discard.
	Logger *slog.Logger
}

// Server is an HTTP proxy. It is an http.Handler, and also serves a
// listener of its own with Serve. Create it with New.
type Server struct {
	cfg       Config
	log       *slog.Logger
	transport *http.Transport
	forwarder *httputil.ReverseProxy
	relay     relay.Relay

	closing  context.Context // canceled when in-flight requests must end
	closeAll context.CancelFunc

	mu      sync.Mutex
	srv     *http.Server
	closed  bool
	running sync.WaitGroup // ServeHTTP calls in flight
}

// New validates cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Dial == nil {
		return nil, errors.New("httpproxy: no Dial")
	}
	if cfg.PAC != "" && cfg.PACProxies != nil {
		return nil, errors.New("httpproxy: both PAC and PACProxies set")
	}
	for _, p := range cfg.PACProxies {
		if p == "" || strings.ContainsAny(p, "\"\\\r\n") {
			return nil, errors.New("httpproxy: PACProxies: bad entry " + strings.ReplaceAll(p, "\n", " "))
		}
	}
	if cfg.ReadHeaderTimeout < 0 || cfg.IdleTimeout < 0 || cfg.DialTimeout < 0 || cfg.MaxHeaderBytes < 0 {
		return nil, errors.New("httpproxy: negative limit")
	}
	if cfg.ReadHeaderTimeout == 0 {
		cfg.ReadHeaderTimeout = 10 * time.Second
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 2 * time.Minute
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 30 * time.Second
	}
	if cfg.MaxHeaderBytes == 0 {
		cfg.MaxHeaderBytes = 64 << 10
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.closing, s.closeAll = context.WithCancel(context.Background())
	s.transport, s.forwarder = s.newForwarder()
	return s, nil
}

// ServeHTTP serves one request: CONNECT, an absolute-form request, or the
// PAC file; any other request is answered 404 and never forwarded. An
// absolute-form request for the proxy's own address is served as if it
// were origin-form, never forwarded to itself.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.enter() {
		http.Error(w, "proxy shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.running.Done()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.closing, cancel)
	defer stop()
	r = r.WithContext(ctx)

	switch {
	case r.Method == http.MethodConnect:
		s.connect(w, r)
	case r.URL.IsAbs() && !isSelf(r):
		s.forward(w, r)
	case r.URL.Path == "/proxy.pac" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		s.servePAC(w, r)
	default:
		http.Error(w, "this is a proxy: use absolute-form requests, CONNECT, or /proxy.pac", http.StatusNotFound)
	}
}

func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.running.Add(1)
	return true
}
