package doh

import (
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

	// CacheBytes bounds the memory the cached answers take (their index
	// adds 20 to 40 bytes each). 0 means 32 MiB;
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
	// MaxFlights bounds the distinct queries waiting on upstreams at once;
	// past it, new ones are answered SERVFAIL (or stale) at once. 0 means
	// 10000.
	MaxFlights int
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
	maxFlights int
	log        *slog.Logger
	now        func() time.Time

	wg sync.WaitGroup // flights in the air

	mu      sync.Mutex
	flights map[string]*flight
	closed  bool

	hitBuffers sync.Pool // of *hitBuffer, for AppendCached

	answers *answerCounters // Stats
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
	if cfg.MaxFlights == 0 {
		cfg.MaxFlights = 10000
	}
	if cfg.MaxFlights < 0 || cfg.Timeout < 0 || cfg.AttemptTimeout < 0 || cfg.MaxTTL < 0 || cfg.StaleAfter < 0 {
		return nil, errors.New("doh: negative MaxFlights, timeout or TTL")
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
		maxFlights: cfg.MaxFlights,
		log:        cfg.Logger,
		now:        time.Now,
		flights:    make(map[string]*flight),
		answers:    new(answerCounters),
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
		r.ups.list = append(r.ups.list, &tracked{upstream: u, name: upstreamName(s)})
	}
	if cfg.CacheBytes >= 0 {
		r.cache = cache.New(cache.Config{MaxBytes: cfg.CacheBytes, StaleFor: max(cfg.StaleFor, 0)})
	}
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
	for _, f := range r.flights {
		f.stop()
	}
	r.mu.Unlock()
	r.wg.Wait()
	r.closeUpstreams()
	return nil
}

func (r *Resolver) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

func (r *Resolver) closeUpstreams() {
	for _, u := range r.ups.list {
		u.close()
	}
}
