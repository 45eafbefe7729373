package doh

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/porta443/porta/doh/cache"
)

// flight is one upstream resolution that every identical query waits for.
type flight struct {
	ctx     context.Context // bounds the flight by Timeout; canceled by Close
	cancel  context.CancelFunc
	done    chan struct{}
	e       *cache.Entry // set before done is closed; never nil then
	failed  bool         // the upstreams failed or answered SERVFAIL
	waiters atomic.Int32 // queries waiting, for tests to see coalescing
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

// join returns the flight for q's key, starting it if there is none;
// ErrClosed once the Resolver is closed, errBusy when starting one would
// pass MaxFlights.
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
	qlen := len(q.name) + 4
	up := make([]byte, 0, 12+qlen+11)
	up = append(up, 0, 0, 0x01, 0x20|b2u8(q.cd)<<4, 0, 1, 0, 0, 0, 0, 0, 1)
	up = append(up, msg[q.nameOff:q.nameOff+qlen]...)
	up = append(up, 0, 0, 41, ednsSize>>8, ednsSize&0xFF, 0, 0, b2u8(q.do)<<7, 0, 0, 0)
	f := &flight{done: make(chan struct{})}
	// Not derived from a context of the Resolver's: every flight would
	// take that context's lock twice to join and leave its children, a
	// contended lock under load. Close cancels the flights in r.flights.
	f.ctx, f.cancel = context.WithTimeout(context.Background(), r.timeout)
	key := string(q.keyBytes)
	r.flights[key] = f
	r.wg.Add(1)
	go r.fly(key, f, up)
	return f, nil
}

// fly asks the upstreams, caches what can be cached and ends the flight.
func (r *Resolver) fly(key string, f *flight, up []byte) {
	defer r.wg.Done()
	resp, err := r.ups.exchange(f.ctx, up)
	f.cancel()
	var e *cache.Entry
	if err == nil {
		e, err = cache.ParseEntry(resp, r.maxTTL, r.now())
		if errors.Is(err, cache.ErrUnusual) {
			e, err = r.entrySlow(up, resp)
		}
	}
	if err != nil {
		r.log.Warn("doh: upstreams failed", "err", err)
		e = r.failure(up, err)
		f.failed = true
	} else if e.Rcode == dns.RcodeServerFailure {
		f.failed = true
	}
	if r.cache != nil && !f.failed {
		r.cache.Put([]byte(key), e)
	}
	r.mu.Lock()
	delete(r.flights, key)
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
