// Package client runs porta's client side on a laptop: a local DNS
// resolver (UDP and TCP), a SOCKS5 proxy and an HTTP proxy, all of whose
// traffic rides one long-lived HTTP/2 or HTTP/3 connection to the server.
package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"

	"github.com/miekg/dns"
	"github.com/porta443/porta/client/httpproxy"
	"github.com/porta443/porta/client/socks5"
	"github.com/porta443/porta/doh"
	"github.com/porta443/porta/internal/metrics"
	"github.com/porta443/porta/internal/sameport"
	"github.com/porta443/porta/tunnel"
)

// Client is porta's client. Build it with New, run it with Serve, stop it
// with Shutdown.
type Client struct {
	cfg      Config
	log      *slog.Logger
	dialer   *tunnel.Dialer
	resolver *doh.Resolver
	dns      *dnsHandler
	socks    *socks5.Server
	http     *httpproxy.Server

	mu         sync.Mutex
	dnsServers []*dns.Server
	dnsUDP     *dnsUDP // serves l.DNSUDP when it is a *net.UDPConn
	serving    bool
	shutdown   bool
	metrics    *http.Server // serving Listeners.Metrics

	closed    chan struct{} // closed by Close, which Shutdown ends with
	closeOnce sync.Once

	counts counts
}

// New checks cfg and prepares the client. It does not connect yet: the
// connection to the server is made on first use and kept.
func New(cfg Config) (*Client, error) {
	cfg.setDefaults()
	log := cfg.Logger
	if len(cfg.Servers) == 0 {
		return nil, &ConfigError{Field: "Servers", Err: errors.New("give at least one https://NAME:TOKEN@host[:port]")}
	}
	boot, err := newBootstrap(cfg.Servers, cfg.Bootstrap)
	if err != nil {
		return nil, err
	}
	echConf, err := newECH(&cfg, boot)
	if err != nil {
		return nil, err
	}
	dialer, err := tunnel.NewDialer(tunnel.DialerConfig{
		ECH:       echConf,
		Resolver:  boot,
		Servers:   cfg.Servers,
		RootCAs:   cfg.RootCAs,
		Pin:       cfg.Pin,
		Insecure:  cfg.Insecure,
		Transport: cfg.Transport,
		StdHTTP2:  cfg.StdHTTP2,
		Logger:    log,
	})
	if err != nil {
		return nil, err
	}
	first, _ := url.Parse(cfg.Servers[0])
	dohURL := (&url.URL{Scheme: "https", Host: first.Host, Path: cfg.DoHPath}).String()
	resolver, err := doh.NewResolver(doh.ResolverConfig{
		Upstreams:     []string{dohURL},
		HTTPTransport: dialer,
		Timeout:       dnsTimeout,
		Logger:        log,
	})
	if err != nil {
		dialer.Close()
		return nil, fmt.Errorf("DoH through the server: %w", err)
	}
	c := &Client{cfg: cfg, log: log, dialer: dialer, resolver: resolver, closed: make(chan struct{})}
	c.dns = &dnsHandler{local: &c.counts.dnsLocal, records: cfg.Records, bootstrap: boot, upstream: resolver, log: log}
	if c.socks, err = socks5.New(socks5.Config{
		Dial:       c.dial,
		DialUDP:    c.dialer.DialContext, // CONNECT-UDP flows on the same connection
		NoFastOpen: cfg.NoFastOpen,
		Users:      cfg.SOCKSUsers,
		Logger:     log,
	}); err != nil {
		c.Close()
		return nil, err
	}
	if c.http, err = httpproxy.New(httpproxy.Config{
		Dial:       c.dial,
		NoFastOpen: cfg.NoFastOpen,
		PACProxies: cfg.PACProxies,
		Logger:     log,
	}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Listeners are the local sockets a Client serves on; any may be nil. The
// caller owns them: Serve closes them when it returns.
type Listeners struct {
	DNSUDP    net.PacketConn
	DNSTCP    net.Listener
	SOCKS     net.Listener
	HTTPProxy net.Listener
	// Metrics serves Prometheus metrics at /metrics (ListenMetrics).
	Metrics net.Listener
}

// Listen opens the local listeners; an empty address leaves that one off.
// DNS listens on UDP and TCP at dnsAddr (with port 0, on one port for both).
func Listen(dnsAddr, socksAddr, httpAddr string) (Listeners, error) {
	var l Listeners
	var err error
	if dnsAddr != "" {
		if l.DNSUDP, l.DNSTCP, err = listenDNS(dnsAddr); err != nil {
			return Listeners{}, &ListenError{Listener: "DNSUDP", Err: err}
		}
	}
	if socksAddr != "" {
		if l.SOCKS, err = net.Listen("tcp", socksAddr); err != nil {
			l.Close()
			return Listeners{}, &ListenError{Listener: "SOCKS", Err: err}
		}
	}
	if httpAddr != "" {
		if l.HTTPProxy, err = net.Listen("tcp", httpAddr); err != nil {
			l.Close()
			return Listeners{}, &ListenError{Listener: "HTTPProxy", Err: err}
		}
	}
	return l, nil
}

// dnsReadBuffer is the DNS socket's receive buffer: bursts of queries
// wait there while the read loop catches up, instead of being dropped by
// the kernel (the system's cap, net.core.rmem_max, may lower it).
const dnsReadBuffer = 4 << 20

func listenDNS(addr string) (net.PacketConn, net.Listener, error) {
	tcp, udp, err := sameport.Listen(addr)
	if uc, ok := udp.(*net.UDPConn); ok {
		uc.SetReadBuffer(dnsReadBuffer) // best effort: a smaller buffer still works
	}
	return udp, tcp, err
}

// Close closes every listener that is set.
func (l Listeners) Close() error {
	var errs []error
	for _, c := range []io.Closer{l.DNSUDP, l.DNSTCP, l.SOCKS, l.HTTPProxy, l.Metrics} {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// Serve serves on l until Shutdown or Close is called or a listener fails.
// ctx is only the parent of what is served's contexts (the proxies'
// connections and requests, DNS queries, metrics requests): canceling it
// cancels those, but does not stop Serve. It returns http.ErrServerClosed
// after Shutdown or Close.
func (c *Client) Serve(ctx context.Context, l Listeners) error {
	c.mu.Lock()
	if c.serving {
		c.mu.Unlock()
		return errors.New("client: Serve called twice")
	}
	c.serving = true
	if c.shutdown {
		// Shutdown or Close came first (Serve may be starting on another
		// goroutine): nothing would ever stop what is started here.
		c.mu.Unlock()
		l.Close()
		return http.ErrServerClosed
	}
	if udp, ok := l.DNSUDP.(*net.UDPConn); ok {
		c.dnsUDP = newDNSUDP(udp, c.resolver, c.dns, c.log)
	} else if l.DNSUDP != nil {
		c.dnsServers = append(c.dnsServers, &dns.Server{PacketConn: l.DNSUDP, Handler: c.dns})
	}
	if l.DNSTCP != nil {
		c.dnsServers = append(c.dnsServers, &dns.Server{Listener: l.DNSTCP, Handler: c.dns, MaxTCPQueries: -1})
	}
	dnsServers, dnsUDP := c.dnsServers, c.dnsUDP
	c.dns.base = ctx // before any DNS server starts
	c.mu.Unlock()

	var wg sync.WaitGroup
	errs := make(chan error, 5)
	run := func(serve func() error) {
		wg.Go(func() {
			err := serve()
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- err
				c.Close() // one listener failed: stop the rest
			}
		})
	}
	for _, s := range dnsServers {
		run(func() error {
			err := s.ActivateAndServe()
			if c.isShutdown() {
				return nil
			}
			return err
		})
	}
	if dnsUDP != nil {
		run(dnsUDP.serve)
	}
	if l.SOCKS != nil {
		run(func() error { return c.socks.Serve(ctx, metrics.Listener{Listener: l.SOCKS, Counts: &c.counts.socks}) })
	}
	if l.HTTPProxy != nil {
		run(func() error {
			return c.http.Serve(ctx, metrics.Listener{Listener: l.HTTPProxy, Counts: &c.counts.httpProxy})
		})
	}
	if l.Metrics != nil {
		run(func() error { return c.serveMetrics(ctx, l.Metrics) })
	}
	c.log.Info("serving", listenerAttrs(l)...)
	wg.Wait()
	<-c.closed // with no listener at all, Serve still lasts until Shutdown or Close
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if len(all) > 0 {
		return errors.Join(all...)
	}
	return http.ErrServerClosed
}

func listenerAttrs(l Listeners) []any {
	var attrs []any
	if l.DNSUDP != nil {
		attrs = append(attrs, "dns", l.DNSUDP.LocalAddr().String())
	}
	if l.SOCKS != nil {
		attrs = append(attrs, "socks", l.SOCKS.Addr().String())
	}
	if l.HTTPProxy != nil {
		attrs = append(attrs, "http-proxy", l.HTTPProxy.Addr().String())
	}
	return attrs
}

// Shutdown stops accepting, lets connections in flight finish until ctx
// ends, then closes what is left and the connection to the server.
func (c *Client) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	c.shutdown = true
	dnsServers, dnsUDP, metricsSrv := c.dnsServers, c.dnsUDP, c.metrics
	c.mu.Unlock()
	var wg sync.WaitGroup
	if metricsSrv != nil {
		wg.Go(func() { metricsSrv.Shutdown(ctx) })
	}
	if dnsUDP != nil {
		wg.Go(func() { dnsUDP.shutdown(ctx) })
	}
	for _, s := range dnsServers {
		wg.Go(func() {
			if err := s.ShutdownContext(ctx); err != nil {
				closeDNSServer(s) // not started yet: this makes it return at once
			}
		})
	}
	var errSOCKS, errHTTP error
	wg.Go(func() { errSOCKS = c.socks.Shutdown(ctx) })
	wg.Go(func() { errHTTP = c.http.Shutdown(ctx) })
	wg.Wait()
	return errors.Join(errSOCKS, errHTTP, c.Close())
}

// Close closes everything at once: the DNS listeners, the proxies, the
// resolver and the connection to the server.
func (c *Client) Close() error {
	c.mu.Lock()
	c.shutdown = true
	dnsServers, dnsUDP, metricsSrv := c.dnsServers, c.dnsUDP, c.metrics
	c.mu.Unlock()
	defer c.closeOnce.Do(func() { close(c.closed) })
	if dnsUDP != nil {
		dnsUDP.conn.Close() // its serve returns once the slow queries are answered
	}
	for _, s := range dnsServers {
		closeDNSServer(s)
	}
	var errs []error
	if metricsSrv != nil {
		errs = append(errs, metricsSrv.Close())
	}
	if c.socks != nil {
		errs = append(errs, c.socks.Close())
	}
	if c.http != nil {
		errs = append(errs, c.http.Close())
	}
	errs = append(errs, c.resolver.Close(), c.dialer.Close())
	return errors.Join(errs...)
}

// closeDNSServer closes a miekg/dns server's socket, which ends its
// ActivateAndServe.
func closeDNSServer(s *dns.Server) {
	if s.PacketConn != nil {
		s.PacketConn.Close()
	}
	if s.Listener != nil {
		s.Listener.Close()
	}
}

func (c *Client) isShutdown() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.shutdown
}
