package doh

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/porta443/porta/doh/cache"
)

// ResolverConfig sets up a Resolver. The zero value forwards to the
// system's resolvers with the defaults below.
type ResolverConfig struct {
	// Upstreams are the resolvers to forward to: udp://host[:port] (retried
	// over TCP when truncated), tcp://, tls:// (DNS over TLS) or
	// https://host[:port]/path (DNS over HTTPS). A bare host[:port] is udp://.
	// Empty means the nameservers in ResolvConf.
	Upstreams []string
	// ResolvConf is read when Upstreams is empty. "" means /etc/resolv.conf.
	ResolvConf string
	// TLSConfig is used for tls:// and https:// upstreams (each gets a clone
	// with its own server name). nil means the system's roots.
	TLSConfig *tls.Config
	// HTTPTransport, if set, carries the requests to https:// upstreams
	// instead of a transport of the resolver's own: porta's client sends
	// its DoH over the tunnel's connection to the server this way.
	HTTPTransport http.RoundTripper

	// Timeout bounds a whole upstream resolution, failover included; when it
	// runs out the answer is SERVFAIL with an extended error (RFC 8914).
	// 0 means 3 s.
	Timeout time.Duration
	// AttemptTimeout bounds one try at one upstream. 0 means 1 s.
	AttemptTimeout time.Duration

	// CacheBytes bounds the cache, roughly in bytes. 0 means 32 MiB;
	// negative turns caching off.
	CacheBytes int
	// MaxTTL caps how long an answer is cached. 0 means 1 day.
	MaxTTL time.Duration
	// StaleFor is how long past expiry an answer is kept to be served stale
	// (RFC 8767) when the upstreams fail. 0 means 1 day; negative means never.
	StaleFor time.Duration
	// StaleAfter is how long a query for an expired answer waits for the
	// upstreams before it is answered stale (RFC 8767's client response
	// timer). 0 means 1.8 s.
	StaleAfter time.Duration
	// NoPrefetch turns off refreshing popular answers shortly before they
	// expire.
	NoPrefetch bool

	// Logger receives errors from upstreams, never query names. nil discards.
	Logger *slog.Logger
}

// Resolver answers DNS queries from its cache or from its upstreams. It is
// an Exchanger, the backend of Handler, and safe for concurrent use.
type Resolver struct {
	ups        upstreams
	cache      *cache.Cache // nil when caching is off
	timeout    time.Duration
	maxTTL     uint32
	staleAfter time.Duration
	prefetch   bool
	log        *slog.Logger
	now        func() time.Time

	ctx    context.Context // ends with Close; every flight runs under it
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	flights map[string]*flight
	closed  bool
}

// NewResolver checks cfg and makes a Resolver. A bad upstream URL is an
// error that names it.
func NewResolver(cfg ResolverConfig) (*Resolver, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.AttemptTimeout == 0 {
		cfg.AttemptTimeout = time.Second
	}
	if cfg.MaxTTL == 0 {
		cfg.MaxTTL = 24 * time.Hour
	}
	if cfg.StaleFor == 0 {
		cfg.StaleFor = 24 * time.Hour
	}
	if cfg.StaleAfter == 0 {
		cfg.StaleAfter = 1800 * time.Millisecond
	}
	if cfg.Timeout < 0 || cfg.AttemptTimeout < 0 || cfg.MaxTTL < 0 || cfg.StaleAfter < 0 {
		return nil, errors.New("doh: negative timeout or TTL")
	}
	urls := cfg.Upstreams
	if len(urls) == 0 {
		var err error
		if urls, err = systemUpstreams(cfg.ResolvConf); err != nil {
			return nil, err
		}
	}
	r := &Resolver{
		timeout:    cfg.Timeout,
		maxTTL:     uint32(cfg.MaxTTL / time.Second),
		staleAfter: cfg.StaleAfter,
		prefetch:   !cfg.NoPrefetch,
		log:        cfg.Logger,
		now:        time.Now,
		flights:    make(map[string]*flight),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	for _, s := range urls {
		u, err := newUpstream(s, cfg.TLSConfig, cfg.HTTPTransport, cfg.AttemptTimeout)
		if err != nil {
			r.closeUpstreams()
			return nil, fmt.Errorf("doh: %w", err)
		}
		r.ups.list = append(r.ups.list, &tracked{upstream: u})
	}
	if cfg.CacheBytes >= 0 {
		r.cache = cache.New(cache.Config{MaxBytes: cfg.CacheBytes, StaleFor: max(cfg.StaleFor, 0)})
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r, nil
}

// systemUpstreams reads the nameservers of a resolv.conf file.
func systemUpstreams(path string) ([]string, error) {
	if path == "" {
		path = "/etc/resolv.conf"
	}
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("doh: no upstreams given and %w", err)
	}
	if len(cc.Servers) == 0 {
		return nil, fmt.Errorf("doh: no upstreams given and no nameserver in %s", path)
	}
	urls := make([]string, 0, len(cc.Servers))
	for _, s := range cc.Servers {
		urls = append(urls, "udp://"+net.JoinHostPort(s, cc.Port))
	}
	return urls, nil
}

// Close cancels every resolution in flight, waits for their goroutines and
// closes idle upstream connections. Queries after Close fail.
func (r *Resolver) Close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	r.closeUpstreams()
	return nil
}

func (r *Resolver) closeUpstreams() {
	for _, u := range r.ups.list {
		u.close()
	}
}

// ErrClosed is returned by a Resolver's methods after Close.
var ErrClosed = errors.New("doh: resolver closed")

// Exchange answers m from the cache or the upstreams. Every failure of the
// upstreams is a SERVFAIL answer, not an error; errors are for a malformed
// m, a done ctx, or a closed Resolver.
func (r *Resolver) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	msg, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("doh: pack query: %w", err)
	}
	var q query
	if err := parseQuery(msg, &q); err != nil {
		return nil, err
	}
	out, _, err := r.answer(ctx, nil, msg, &q)
	if err != nil {
		return nil, err
	}
	resp := new(dns.Msg)
	if err := resp.Unpack(out); err != nil {
		return nil, fmt.Errorf("doh: unpack answer: %w", err)
	}
	return resp, nil
}

// answer appends to dst the answer to the query msg, which parseQuery read
// into q, and returns it with its HTTP freshness lifetime in seconds.
func (r *Resolver) answer(ctx context.Context, dst, msg []byte, q *query) ([]byte, uint32, error) {
	switch {
	case q.qdcount != 1:
		return appendError(dst, q, msg, dns.RcodeFormatError, nil), 0, nil
	case q.opcode != dns.OpcodeQuery:
		return appendError(dst, q, msg, dns.RcodeNotImplemented, nil), 0, nil
	case q.edns && q.version != 0:
		return appendError(dst, q, msg, dns.RcodeBadVers, nil), 0, nil
	case q.qtype == dns.TypeAXFR || q.qtype == dns.TypeIXFR:
		return appendError(dst, q, msg, dns.RcodeRefused, edeOption(dns.ExtendedErrorCodeNotSupported, "")), 0, nil
	}
	now := r.now()
	var cached *cache.Entry
	if r.cache != nil {
		cached = r.cache.Get(q.keyBytes, now)
		if cached != nil && cached.Fresh(now) {
			r.maybePrefetch(q, msg, cached, now)
			return appendAnswer(dst, q, msg, cached, now, false), cached.Remaining(now), nil
		}
	}
	e, stale, err := r.resolve(ctx, q, msg, cached)
	if err != nil {
		return nil, 0, err
	}
	now = r.now()
	if stale {
		return appendAnswer(dst, q, msg, e, now, true), cache.StaleTTL, nil
	}
	return appendAnswer(dst, q, msg, e, now, false), e.Remaining(now), nil
}

// maybePrefetch refreshes an entry in the background when it is popular
// near its end: a second hit in the last tenth of its lifetime. Hits are
// counted only there, so that most hits write nothing shared.
func (r *Resolver) maybePrefetch(q *query, msg []byte, e *cache.Entry, now time.Time) {
	if !r.prefetch || e.TTL() < 10 || e.Remaining(now) > e.TTL()/10 {
		return
	}
	if e.Hit() >= 2 && e.ClaimPrefetch() {
		r.join(q, msg)
	}
}
