package doh

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/miekg/dns"
	"github.com/porta443/porta/doh/cache"
)

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
	b, q := r.hitBuffer()
	defer r.hitBuffers.Put(b)
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
	if out, ok := r.answerItself(dst, msg, q); ok {
		r.count(AnswerRejected)
		return out, 0, nil
	}
	now := r.now()
	var cached *cache.Entry
	if r.cache != nil && r.cache.Get(q.keyBytes, now, q.entry()) {
		cached = q.hit
		if cached.Fresh(now) {
			r.count(AnswerHit)
			r.maybePrefetch(q, msg, cached, now)
			return appendAnswer(dst, q, msg, cached, now, false), cached.Remaining(now), nil
		}
	}
	e, stale, err := r.resolve(ctx, q, msg, cached)
	if errors.Is(err, errBusy) {
		r.count(AnswerBusy)
		ede := edeOption(dns.ExtendedErrorCodeOther, "too many queries in flight")
		return appendError(dst, q, msg, dns.RcodeServerFailure, ede), 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	now = r.now()
	switch {
	case stale:
		r.count(AnswerStale)
		return appendAnswer(dst, q, msg, e, now, true), cache.StaleTTL, nil
	case e.Rcode == dns.RcodeServerFailure:
		r.count(AnswerFailed)
	default:
		r.count(AnswerMiss)
	}
	return appendAnswer(dst, q, msg, e, now, false), e.Remaining(now), nil
}

// answerItself answers the queries the resolver does not forward: more
// or fewer than one question, another opcode, an EDNS version it does not
// speak, a zone transfer.
func (r *Resolver) answerItself(dst, msg []byte, q *query) ([]byte, bool) {
	switch {
	case q.qdcount != 1:
		return appendError(dst, q, msg, dns.RcodeFormatError, nil), true
	case q.opcode != dns.OpcodeQuery:
		return appendError(dst, q, msg, dns.RcodeNotImplemented, nil), true
	case q.edns && q.version != 0:
		return appendError(dst, q, msg, dns.RcodeBadVers, nil), true
	case q.qtype == dns.TypeAXFR || q.qtype == dns.TypeIXFR:
		return appendError(dst, q, msg, dns.RcodeRefused, edeOption(dns.ExtendedErrorCodeNotSupported, "")), true
	}
	return dst, false
}

// maybePrefetch refreshes an entry in the background when it is popular
// near its end: a second hit in the last tenth of its lifetime. Hits are
// counted only there, so that most hits write nothing shared.
func (r *Resolver) maybePrefetch(q *query, msg []byte, e *cache.Entry, now time.Time) {
	if !r.prefetch || e.TTL() < 10 || e.Remaining(now) > e.TTL()/10 {
		return
	}
	if r.cache.ClaimPrefetch(q.keyBytes, e) {
		r.join(q, msg) // when busy or closed, no prefetch
	}
}
