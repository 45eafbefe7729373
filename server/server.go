// Package server runs porta's server side: one address, TCP and UDP, where
// TLS carries HTTP/1.1 and HTTP/2 and QUIC carries HTTP/3, all served by one
// handler that routes each request to the tunnel, the DoH resolver or the
// website. It owns the listeners' TLS, the certificates and the lifecycle.
package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/porta443/porta/doh"
	"github.com/porta443/porta/internal/coalesce"
	"github.com/porta443/porta/internal/h2"
	"github.com/porta443/porta/internal/metrics"
	"github.com/porta443/porta/internal/sameport"
	"github.com/porta443/porta/internal/selfsigned"
	"github.com/porta443/porta/tunnel"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// Server is porta's server. Build it with New, run it with Serve, stop it
// with Shutdown.
type Server struct {
	cfg       Config
	log       *slog.Logger
	certs     *certSource
	ech       *echKeys    // nil: no ECH
	own       *ownRecords // the HTTPS records of its own names; nil without ECH
	resolver  *doh.Resolver
	users     *tunnel.Users   // nil: no tunnel
	tunnel    *tunnel.Handler // nil: no tunnel
	handler   http.Handler    // the tunnel, then the router
	doh       *doh.Handler    // the router's
	probeDoH  *doh.Handler    // the probe router's: counted apart
	proxyFrom []netip.Prefix  // with Config.ProxyProtocol
	counts    counts

	mu       sync.Mutex
	https    *http.Server
	h3       *http3.Server
	redirect *http.Server
	metrics  *http.Server
	shutdown bool // Shutdown was called: a later Serve returns at once

	closeOnce sync.Once
}

// New checks cfg and prepares everything that can fail before listening:
// certificates are loaded, the website is opened, upstreams and users
// checked. Close releases what it holds if Serve is never called.
func New(cfg Config) (_ *Server, err error) {
	cfg.setDefaults()
	log := cfg.Logger
	if err := checkECH(&cfg); err != nil {
		return nil, err // before the certificate is made to cover the name
	}
	certs, err := newCertSource(&cfg, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			certs.close() // what ACME started
		}
	}()
	echKeys, err := newECHKeys(&cfg, log)
	if err != nil {
		return nil, err
	}
	site, err := newSite(&cfg, log)
	if err != nil {
		return nil, err
	}
	if p := cfg.DoHPath; p[0] != '/' || p == "/" || strings.ContainsAny(p, "?#") {
		return nil, &ConfigError{Field: "DoHPath", Value: p, Err: errors.New("want a path such as /dns-query")}
	}
	resolver, err := doh.NewResolver(doh.ResolverConfig{Upstreams: cfg.Upstreams, Logger: log})
	if err != nil {
		return nil, &ConfigError{Field: "Upstreams", Err: err}
	}
	s := &Server{cfg: cfg, log: log, certs: certs, ech: echKeys, resolver: resolver}
	if s.proxyFrom, err = proxyFrom(&cfg); err != nil {
		resolver.Close()
		return nil, err
	}
	router, probe := s.routers(site)
	s.doh.Own = s.ownRecords()
	s.probeDoH.Own = s.doh.Own
	s.handler = router
	if len(cfg.Users) > 0 || cfg.UsersFile != "" {
		if s.users, err = newUsers(&cfg); err != nil {
			resolver.Close()
			return nil, err
		}
		s.tunnel, err = tunnel.NewHandler(tunnel.HandlerConfig{
			Next:         router,
			Probe:        probe,
			Users:        s.users,
			Resolver:     resolver,
			AllowPrivate: cfg.AllowPrivate,
			Logger:       log,
		})
		if err != nil {
			resolver.Close()
			return nil, err
		}
		s.handler = s.tunnel
	}
	return s, nil
}

// newUsers makes the tunnel's users. The entries of Users are checked
// first on their own, so that an error names the field it comes from: one
// from the users file (or a name in both) is UsersFile's.
func newUsers(cfg *Config) (*tunnel.Users, error) {
	if _, err := tunnel.NewUsers(tunnel.UsersConfig{Users: cfg.Users}); err != nil {
		return nil, &ConfigError{Field: "Users", Err: err}
	}
	users, err := tunnel.NewUsers(tunnel.UsersConfig{Users: cfg.Users, File: cfg.UsersFile})
	if err != nil {
		return nil, &ConfigError{Field: "UsersFile", Err: err}
	}
	return users, nil
}

// Pin is the SHA-256 pin of the certificate in use ("sha256//BASE64"), for
// clients that trust a self-signed server by its key.
func (s *Server) Pin() string {
	cert := s.certs.current.Load()
	if cert == nil {
		return ""
	}
	return selfsigned.Pin(cert.Leaf)
}

// Reload reads the certificate files and the users file again.
// Connections in flight keep going; new handshakes get the new certificate
// and new requests the new users. What fails to load is kept as it was.
func (s *Server) Reload() error {
	err := s.certs.reload()
	if s.users != nil {
		err = errors.Join(err, s.users.Reload())
	}
	return err
}

// Listeners are the sockets a Server serves on. The caller owns them: Serve
// closes them when it returns.
type Listeners struct {
	TCP  net.Listener   // TLS: HTTP/1.1 and HTTP/2
	UDP  net.PacketConn // QUIC: HTTP/3; nil: no HTTP/3
	HTTP net.Listener   // plain HTTP, redirected to HTTPS; nil: none
	// Metrics serves Prometheus metrics at /metrics; nil: none. Open it
	// with metrics.Listen, never on the public port.
	Metrics net.Listener
}

// Listen opens TCP and UDP on addr, and plain HTTP on httpAddr unless it is
// "". With port 0 in addr, UDP takes the port TCP was given (trying again
// with another port if that one is taken on UDP).
func Listen(addr, httpAddr string) (Listeners, error) {
	var l Listeners
	tcp, udp, err := sameport.Listen(addr)
	if err != nil {
		return l, &ListenError{Listener: "TCP", Err: err}
	}
	l.TCP, l.UDP = tcp, udp
	if httpAddr != "" {
		if l.HTTP, err = net.Listen("tcp", httpAddr); err != nil {
			l.Close()
			return Listeners{}, &ListenError{Listener: "HTTP", Err: err}
		}
	}
	return l, nil
}

// Close closes every listener that is set.
func (l Listeners) Close() error {
	var errs []error
	for _, c := range []io.Closer{l.TCP, l.UDP, l.HTTP, l.Metrics} {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// Serve serves on l until Shutdown or Close is called or a listener fails.
// ctx is only the parent of every request's context (http.Server's
// BaseContext): canceling it does not stop Serve, though net/http then
// fails the TLS handshakes it runs under it. It returns
// http.ErrServerClosed after Shutdown or Close.
func (s *Server) Serve(ctx context.Context, l Listeners) error {
	base := func(net.Listener) context.Context { return ctx }
	errLog := slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)

	handler := http.Handler(earlyDataGuard{s.handler})
	if l.UDP != nil {
		_, port, _ := net.SplitHostPort(l.UDP.LocalAddr().String())
		handler = altSvc{value: []string{`h3=":` + port + `"; ma=86400`}, next: handler}
	}

	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	https := &http.Server{
		Handler:           handler,
		TLSConfig:         s.tcpTLSConfig(),
		Protocols:         &protocols,
		HTTP2:             s.http2Config(),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout, // also the TLS handshake's deadline
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		BaseContext:       base,
		ConnState:         s.connState,
		ErrorLog:          errLog,
	}
	if !s.cfg.StdHTTP2 {
		// Extended CONNECT (RFC 8441) carries CONNECT-UDP; see the
		// //go:debug http2xconnect line in cmd/porta for net/http's.
		h2s := &h2.Server{Logger: s.log, EnableConnectProtocol: true}
		if err := h2s.ConfigureServer(https); err != nil {
			return err
		}
	}
	var h3 *http3.Server
	if l.UDP != nil {
		h3 = &http3.Server{
			Handler:         handler,
			EnableDatagrams: true, // HTTP Datagrams carry CONNECT-UDP flows (RFC 9297)
			TLSConfig:       quicTLSConfig(s.certs.GetCertificate),
			QUICConfig:      s.quicConfig(),
			MaxHeaderBytes:  s.cfg.MaxHeaderBytes,
			IdleTimeout:     s.cfg.IdleTimeout,
			Logger:          s.log,
			ConnContext: func(_ context.Context, c *quic.Conn) context.Context {
				s.quicConn(c)
				return ctx
			},
		}
	}
	var redirect *http.Server
	if l.HTTP != nil {
		_, port, _ := net.SplitHostPort(l.TCP.Addr().String())
		httpsPort, _ := net.LookupPort("tcp", port)
		redirect = &http.Server{
			Handler:           s.plainHTTPHandler(httpsPort),
			ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       s.cfg.IdleTimeout,
			MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
			BaseContext:       base,
			ErrorLog:          errLog,
		}
	}

	var metricsSrv *http.Server
	if l.Metrics != nil {
		metricsSrv = metrics.NewServer(s.metricSet(), s.log)
	}

	s.mu.Lock()
	if s.https != nil {
		s.mu.Unlock()
		return errors.New("server: Serve called twice")
	}
	if s.shutdown {
		s.mu.Unlock()
		l.Close()
		return http.ErrServerClosed
	}
	s.https, s.h3, s.redirect, s.metrics = https, h3, redirect, metricsSrv
	s.mu.Unlock()
	stopCerts := s.certs.watch() // renewal and expiry warnings while serving
	defer stopCerts()
	if s.certs.acme != nil {
		s.certs.acme.start(l.TCP.Addr(), httpAddr(l))
	}
	stopECH := s.serveECH(https, h3, l.TCP.Addr())
	defer stopECH()

	s.log.Info("serving", "addr", l.TCP.Addr().String(), "http3", h3 != nil, "http-redirect", redirect != nil)

	errs := make(chan error, 4)
	run := func(serve func() error) {
		err := serve()
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, quic.ErrServerClosed) {
			errs <- err
			s.closeAll() // one listener failed: stop the others too
			return
		}
		errs <- nil
	}
	n := 1
	go run(func() error { return https.ServeTLS(coalesce.NewListener(s.tcpListener(l.TCP)), "", "") })
	if h3 != nil {
		n++
		go run(func() error { return h3.Serve(l.UDP) })
	}
	if redirect != nil {
		n++
		go run(func() error { return redirect.Serve(l.HTTP) })
	}
	if metricsSrv != nil {
		n++
		go run(func() error { return metrics.Serve(ctx, metricsSrv, l.Metrics) })
	}
	var all []error
	for range n {
		if err := <-errs; err != nil {
			all = append(all, err)
		}
	}
	if l.UDP != nil {
		l.UDP.Close() // http3.Server does not close a PacketConn it was given
	}
	if len(all) > 0 {
		return errors.Join(all...)
	}
	return http.ErrServerClosed
}

// Shutdown stops accepting, lets requests in flight finish until ctx ends,
// then closes what is left. Serve returns once everything has stopped; a
// Serve that had not begun serving yet (it may be starting on another
// goroutine) closes its listeners and returns http.ErrServerClosed, as
// net/http's does.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	https, h3, redirect, metricsSrv := s.https, s.h3, s.redirect, s.metrics
	s.mu.Unlock()
	if https == nil {
		return s.Close()
	}
	if s.tunnel != nil {
		// A UDP flow has no end of its own to wait for: it ends now, and
		// its client dials again (elsewhere) with its next datagram.
		s.tunnel.CloseUDP()
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	wg.Go(func() { errs[0] = https.Shutdown(ctx) })
	if h3 != nil {
		wg.Go(func() { errs[1] = h3.Shutdown(ctx) })
	}
	if redirect != nil {
		wg.Go(func() { errs[2] = redirect.Shutdown(ctx) })
	}
	if metricsSrv != nil {
		wg.Go(func() { errs[3] = metricsSrv.Shutdown(ctx) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		s.closeAll()
	}
	if s.tunnel != nil {
		// Until ctx ends, for the tunnels that outlive their HTTP server
		// (HTTP/1.1 CONNECT, whose connections are hijacked); Close ends
		// those left.
		s.tunnel.WaitIdle(ctx)
	}
	return errors.Join(append(errs, s.Close())...)
}

// Close stops serving at once: it closes the listeners and every
// connection, ends every tunnel still open and releases the resolver. A
// Serve that has not begun yet returns http.ErrServerClosed. Shutdown ends
// with it. Calls after the first do nothing.
func (s *Server) Close() error {
	s.mu.Lock()
	s.shutdown = true
	s.mu.Unlock()
	s.closeAll()
	var err error
	s.closeOnce.Do(func() {
		if s.tunnel != nil {
			s.tunnel.Close()
		}
		s.certs.close()
		err = s.resolver.Close()
	})
	return err
}

func (s *Server) closeAll() {
	s.mu.Lock()
	https, h3, redirect, metricsSrv := s.https, s.h3, s.redirect, s.metrics
	s.mu.Unlock()
	if https != nil {
		https.Close()
	}
	if metricsSrv != nil {
		metricsSrv.Close()
	}
	if h3 != nil {
		h3.Close()
	}
	if redirect != nil {
		redirect.Close()
	}
}
