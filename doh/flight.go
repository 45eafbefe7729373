package doh

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/porta443/porta/doh/cache"
	"github.com/porta443/porta/internal/redact"
)

// flight is one upstream resolution that every identical query waits for.
type flight struct {
	r       *Resolver
	key     string
	up      []byte     // the query for the upstreams, ID 0
	start   time.Time  // Timeout runs from here
	order   []*tracked // the upstreams, in the order they are tried
	try     udpTry     // the first try, when order[0] is a UDP upstream
	done    chan struct{}
	e       *cache.Entry // set before done is closed; never nil then
	failed  bool         // the upstreams failed or answered SERVFAIL
	waiters atomic.Int32 // queries waiting, for tests to see coalescing

	mu       sync.Mutex
	sent     bool               // try is on a socket
	cancel   context.CancelFunc // fly's, once it runs
	canceled bool               // by Close
}

// resolve waits for the flight of q's key and returns its answer; or stale,
// when there is one and the flight fails or takes longer than StaleAfter.
func (r *Resolver) resolve(ctx context.Context, q *query, msg []byte, stale *cache.Entry) (*cache.Entry, bool, error) {
	f, err := r.join(q, msg)
	if err != nil {
		if errors.Is(err, errBusy) && stale != nil {
			return stale, true, nil
		}
		return nil, false, err
	}
	f.waiters.Add(1)
	var timeout <-chan time.Time
	if stale != nil {
		t := time.NewTimer(r.staleAfter)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-f.done:
		if f.failed && stale != nil {
			return stale, true, nil
		}
		return f.e, false, nil
	case <-timeout:
		return stale, true, nil
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

// errBusy is join's answer when MaxFlights are in the air already.
var errBusy = errors.New("doh: too many queries in flight")

// join returns the flight for q's key, making and launching one when
// there is none; ErrClosed once the Resolver is closed, errBusy when
// making one would pass MaxFlights.
func (r *Resolver) join(q *query, msg []byte) (*flight, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	if f := r.flights[string(q.keyBytes)]; f != nil {
		return f, nil
	}
	if len(r.flights) >= r.maxFlights {
		return nil, errBusy
	}
	// A fresh query: RD, AD (RFC 6840 §5.7), the client's CD, and an OPT
	// record with only the DO bit: no Client Subnet, no cookies, no padding.
	// Room for it twice: the UDP try's copy carries an ID.
	qlen := len(q.name) + 4
	n := 12 + qlen + 11
	up := make([]byte, 0, 2*n)
	up = append(up, 0, 0, 0x01, 0x20|b2u8(q.cd)<<4, 0, 1, 0, 0, 0, 0, 0, 1)
	up = append(up, msg[q.nameOff:q.nameOff+qlen]...)
	up = append(up, 0, 0, 41, ednsSize>>8, ednsSize&0xFF, 0, 0, b2u8(q.do)<<7, 0, 0, 0)
	f := &flight{r: r, key: string(q.keyBytes), up: up[:n:n], done: make(chan struct{})}
	f.try.msg = up[n:n]
	r.flights[f.key] = f
	r.wg.Add(1)
	r.goLaunch(f)
	return f, nil
}

// launch sends f's query to the first upstream. When that is a UDP one,
// its socket's reader ends the flight on a good answer, without a
// goroutine, a context or a timer of the flight's own; anything else goes
// on in fly, as every flight to another kind of upstream does.
func (r *Resolver) launch(f *flight) {
	f.start = time.Now()
	f.order = r.ups.order(f.start)
	u, ok := f.order[0].upstream.(*udpUpstream)
	if !ok {
		go r.fly(f, nil)
		return
	}
	f.try.u, f.try.a = u, f
	// Not bounded by a context of the Resolver's: every flight would take
	// that context's lock twice to join and leave its children, a
	// contended lock under load. Close stops the flights in r.flights.
	u.send(context.Background(), &f.try, f.up, f.start.Add(r.timeout))
	f.mu.Lock()
	f.sent = true
	canceled := f.canceled
	f.mu.Unlock()
	if canceled {
		f.try.stop(context.Canceled)
	}
}

// goLaunch launches f on a goroutine of its own, which ends when the
// query is sent: a handler's goroutine has a deep stack already, and
// grows it (a copy of the whole stack) to make the system call.
func (r *Resolver) goLaunch(f *flight) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.launch(f)
	}()
}

// stop cancels f for Close: its UDP try, or fly's context.
func (f *flight) stop() {
	f.mu.Lock()
	f.canceled = true
	sent, cancel := f.sent, f.cancel
	f.mu.Unlock()
	if cancel != nil {
		cancel()
	} else if sent {
		f.try.stop(context.Canceled)
	}
}

// answer is the UDP try's answer, on its socket's reader goroutine: one
// that upstreams.exchange would take at once ends the flight here;
// anything else goes on in fly.
func (f *flight) answer(resp []byte) {
	resp[0], resp[1] = f.up[0], f.up[1] // the ID exchangeUDP would give it
	notTC := resp[2]&0x02 == 0
	if notTC && checkReply(f.up, resp) == nil && !softFailure(resp) {
		f.order[0].succeeded(time.Since(f.try.start))
		f.r.land(f, resp, nil)
		return
	}
	go f.r.fly(f, &firstTry{start: f.try.start, udpResult: udpResult{r: append([]byte(nil), resp...)}})
}

// fail is the end of a UDP try without an answer.
func (f *flight) fail(err error) {
	go f.r.fly(f, &firstTry{start: f.try.start, udpResult: udpResult{err: err}})
}

// fly asks the upstreams, after the first try over UDP when there was one,
// and lands the flight.
func (r *Resolver) fly(f *flight, first *firstTry) {
	ctx, cancel := context.WithDeadline(context.Background(), f.start.Add(r.timeout))
	f.mu.Lock()
	f.cancel = cancel
	if f.canceled {
		cancel()
	}
	f.mu.Unlock()
	resp, err := r.ups.exchange(ctx, f.up, f.order, first)
	cancel()
	r.land(f, resp, err)
}

// land caches what can be cached of the upstreams' answer and ends the
// flight.
func (r *Resolver) land(f *flight, resp []byte, err error) {
	defer r.wg.Done()
	up := f.up
	var e *cache.Entry
	if err == nil {
		e, err = cache.ParseEntry(resp, r.maxTTL, r.now())
		if errors.Is(err, cache.ErrUnusual) {
			e, err = r.entrySlow(up, resp)
		}
	}
	if err != nil {
		r.log.Warn("doh: upstreams failed", "err", redact.Error(err))
		e = r.failure(up, err)
		f.failed = true
	} else if e.Rcode == dns.RcodeServerFailure {
		f.failed = true
	}
	if r.cache != nil && !f.failed {
		r.cache.Put(f.key, e)
	}
	r.mu.Lock()
	delete(r.flights, f.key)
	r.mu.Unlock()
	f.e = e
	close(f.done)
}

// entrySlow makes an entry the long way, through miekg/dns, for answers
// that cache.ParseEntry leaves alone: the question as asked, the records
// without the upstream's OPT, and any extended errors.
func (r *Resolver) entrySlow(upWire, respWire []byte) (*cache.Entry, error) {
	up, resp := new(dns.Msg), new(dns.Msg)
	if err := up.Unpack(upWire); err != nil {
		return nil, err
	}
	if err := resp.Unpack(respWire); err != nil {
		return nil, fmt.Errorf("upstream answer: %w", err)
	}
	m := &dns.Msg{
		MsgHdr: dns.MsgHdr{
			Response:           true,
			Authoritative:      resp.Authoritative,
			RecursionAvailable: true,
			AuthenticatedData:  resp.AuthenticatedData,
			Rcode:              resp.Rcode & 0xF,
		},
		Compress: true,
		Question: up.Question,
		Answer:   resp.Answer,
		Ns:       resp.Ns,
	}
	var opts []byte
	for _, rr := range resp.Extra {
		opt, ok := rr.(*dns.OPT)
		if !ok {
			m.Extra = append(m.Extra, rr)
			continue
		}
		for _, o := range opt.Option {
			if ede, ok := o.(*dns.EDNS0_EDE); ok && len(ede.ExtraText) < 512 {
				opts = append(opts, edeOption(ede.InfoCode, ede.ExtraText)...)
			}
		}
	}
	e, err := cache.NewEntry(m, r.maxTTL, r.now())
	if err != nil {
		return nil, err
	}
	e.Rcode = resp.Rcode
	e.Options = opts
	return e, nil
}

// failure is the SERVFAIL for a question no upstream answered, with an
// extended error saying why (RFC 8914 §4.23, §4.24).
func (r *Resolver) failure(upWire []byte, err error) *cache.Entry {
	up := new(dns.Msg)
	up.Unpack(upWire) // our own query: it unpacks
	m := &dns.Msg{
		MsgHdr:   dns.MsgHdr{Response: true, RecursionAvailable: true, Rcode: dns.RcodeServerFailure},
		Question: up.Question,
	}
	e, perr := cache.NewEntry(m, 0, r.now())
	if perr != nil {
		// A question that packed once packs again; keep a bare header.
		e, _ = cache.NewEntry(&dns.Msg{MsgHdr: m.MsgHdr}, 0, r.now())
	}
	code := dns.ExtendedErrorCodeNetworkError
	text := "no upstream answered"
	if r.isClosed() {
		text = "resolver closed"
	} else if isTimeout(err) {
		code = dns.ExtendedErrorCodeNoReachableAuthority
		text = "upstreams timed out"
	}
	e.Options = edeOption(code, text)
	return e
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
