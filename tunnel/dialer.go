package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/porta443/porta/internal/copybuf"
)

// Dialer opens tunneled TCP connections through a porta server. It keeps
// one connection to one server (more only while one is full) and opens a
// CONNECT stream per DialContext. It is safe for concurrent use.
type Dialer struct {
	cfg     DialerConfig
	servers []*serverInfo
	log     *slog.Logger
	pool    copybuf.Pool // buffers for io.Copy from HTTP/3 tunnels (WriteTo)

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc

	mu         sync.Mutex
	sessions   []session            // live ones first; the first is the preferred
	draining   map[session]struct{} // no new streams (GOAWAY, dead), closed once their streams end
	connecting chan struct{}        // closed when the running connect ends
	connErr    error
	closed     bool
	wg         sync.WaitGroup // connects and conns in flight

	connectFailures atomic.Uint64 // Stats
	udpDropped      atomic.Uint64 // Stats: datagrams from servers no UDP reader took
	echAccepted     atomic.Bool   // the last connection made negotiated ECH
}

type serverInfo struct {
	url       *url.URL
	addr      string // host:port
	host      string // for SNI
	auth      string // Proxy-Authorization value
	tls       *tls.Config
	failed    int       // consecutive failures, for backoff
	notBefore time.Time // backoff
	h2Failed  time.Time // auto: when HTTP/2 last failed
	h3Failed  time.Time
	ech       echServer // guarded by Dialer.mu
}

// DialContext returns a connection to address ("host:port") through the
// tunnel; the host may be a name, which the server resolves.
//
// For "tcp" it returns at once over a live tunnel: the CONNECT goes out
// with the first Write (or Read), so a new connection costs one round
// trip, and a refusal by the server surfaces as the error of that Read or
// Write.
//
// For "udp" the connection is a CONNECT-UDP flow (RFC 9298): each Write
// sends one datagram and each Read returns one, as a connected UDP
// socket's do. The request goes out before DialContext returns, and
// datagrams written before the server answered follow it, so the first
// answer costs one round trip too; a refusal is the error of a Read.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	udp := false
	switch network {
	case "tcp", "tcp4", "tcp6":
	case "udp", "udp4", "udp6":
		udp = true
	default:
		return nil, fmt.Errorf("tunnel: network %q not supported", network)
	}
	if _, _, err := net.SplitHostPort(address); err != nil {
		return nil, fmt.Errorf("tunnel: %w", err)
	}
	s, err := d.session(ctx)
	if err != nil {
		return nil, err
	}
	if udp {
		c, err := d.dialUDP(ctx, s, address) // the conn releases the slot on Close
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	return s.newConn(address), nil // the conn releases the slot on Close
}

// Dial is DialContext with a background context.
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// Protocol reports the transport in use ("h2" or "h3"), or "" if not
// connected.
func (d *Dialer) Protocol() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.sessions {
		if s.alive() {
			return s.proto()
		}
	}
	return ""
}

// Close closes the connection to the server and every tunneled
// connection on it.
func (d *Dialer) Close() error {
	d.mu.Lock()
	d.closed = true
	ss := d.sessions
	for s := range d.draining {
		ss = append(ss, s)
	}
	d.sessions, d.draining = nil, nil
	d.mu.Unlock()
	d.cancel()
	var errs []error
	for _, s := range ss {
		errs = append(errs, s.close())
	}
	d.wg.Wait()
	return errors.Join(errs...)
}

var errDialerClosed = errors.New("tunnel: dialer closed")

// session returns a live session with a stream slot reserved for the
// caller, connecting if every session is dead or full. Only one connect runs
// at a time; concurrent callers wait for it.
func (d *Dialer) session(ctx context.Context) (session, error) {
	for {
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return nil, errDialerClosed
		}
		live := d.sessions[:0]
		for _, s := range d.sessions {
			if s.alive() {
				live = append(live, s)
				continue
			}
			// A server going away (GOAWAY) still finishes the streams it
			// has: the session is closed when the last of them ends.
			if s.inUse() > 0 {
				if d.draining == nil {
					d.draining = make(map[session]struct{})
				}
				d.draining[s] = struct{}{}
				continue
			}
			d.closeSession(s)
		}
		clear(d.sessions[len(live):])
		d.sessions = live
		for _, s := range live {
			if s.reserve(d.cfg.MaxStreamsPerConn) {
				d.mu.Unlock()
				return s, nil
			}
		}
		ch := d.connecting
		if ch == nil {
			ch = make(chan struct{})
			d.connecting = ch
			d.wg.Add(1)
			go d.connect(ch)
		}
		d.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		d.mu.Lock()
		err, n := d.connErr, len(d.sessions)
		d.mu.Unlock()
		if n == 0 && err != nil {
			return nil, err
		}
		// With none and no error, the session just made was taken by
		// others and is full or draining already: connect again.
	}
}

// release gives back a stream slot on s. A session other than the
// preferred one that carries nothing any more is closed: it was only
// opened because the others were full.
func (d *Dialer) release(s session) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s.release()
	if s.inUse() != 0 {
		return
	}
	if _, ok := d.draining[s]; ok {
		delete(d.draining, s)
		d.closeSession(s)
		return
	}
	if len(d.sessions) < 2 || d.sessions[0] == s {
		return
	}
	for i, x := range d.sessions {
		if x == s {
			d.sessions = append(d.sessions[:i], d.sessions[i+1:]...)
			d.closeSession(s)
			return
		}
	}
}

// closeSession closes s on a goroutine of the Dialer's; d.mu is held.
func (d *Dialer) closeSession(s session) {
	d.wg.Add(1)
	go func() { defer d.wg.Done(); s.close() }()
}

// connect tries the servers in order, skipping those in backoff (unless
// all are), and installs the first session that works.
func (d *Dialer) connect(done chan struct{}) {
	defer d.wg.Done()
	var errs []error
	var s session
	for _, si := range d.orderedServers() {
		d.mu.Lock()
		wait := time.Until(si.notBefore)
		d.mu.Unlock()
		if wait > 0 {
			select {
			case <-time.After(wait):
			case <-d.ctx.Done():
			}
		}
		if d.ctx.Err() != nil {
			errs = append(errs, errDialerClosed)
			break
		}
		var err error
		s, err = d.connectServer(si)
		d.mu.Lock()
		if err != nil {
			d.connectFailures.Add(1)
			si.failed++
			backoff := min(time.Duration(1<<min(si.failed, 6))*250*time.Millisecond, 15*time.Second)
			si.notBefore = time.Now().Add(backoff/2 + rand.N(backoff/2+1))
			d.mu.Unlock()
			d.log.Warn("tunnel server unreachable", "server", si.url.Redacted(), "err", err)
			errs = append(errs, fmt.Errorf("%s: %w", si.addr, err))
			continue
		}
		si.failed = 0
		si.notBefore = time.Time{}
		d.mu.Unlock()
		d.log.Info("tunnel connected", "server", si.addr, "proto", s.proto())
		break
	}
	d.mu.Lock()
	if s != nil && d.closed {
		s.close()
		s = nil
	}
	if s != nil {
		d.sessions = append(d.sessions, s)
	}
	d.connErr = nil
	if s == nil {
		d.connErr = fmt.Errorf("tunnel: no server reachable: %w", errors.Join(errs...))
	}
	d.connecting = nil
	close(done)
	d.mu.Unlock()
}

// orderedServers lists servers not in backoff first, in configured order.
func (d *Dialer) orderedServers() []*serverInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	var ready, waiting []*serverInfo
	for _, si := range d.servers {
		if si.notBefore.After(now) {
			waiting = append(waiting, si)
		} else {
			ready = append(ready, si)
		}
	}
	return append(ready, waiting...)
}
