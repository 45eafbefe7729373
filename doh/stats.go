package doh

import (
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/porta443/porta/internal/redact"
)

// The counters here are kept with atomic adds where the work is done and
// read only by Stats, for a metrics exporter to read at scrape time: the
// package itself knows nothing of any metrics library.

// Answer sources, the index of ResolverStats.Answers.
const (
	AnswerHit      = iota // fresh from the cache
	AnswerMiss            // from the upstreams, after a cache miss
	AnswerStale           // from the cache past its expiry, the upstreams failing or slow (RFC 8767)
	AnswerFailed          // SERVFAIL: the upstreams failed or answered SERVFAIL, nothing stale to serve
	AnswerBusy            // SERVFAIL at once: too many queries in flight
	AnswerRejected        // answered by the resolver itself: malformed, unsupported or zone transfer
	numAnswerSources
)

// AnswerSourceNames names the answer sources, by index.
func AnswerSourceNames() [numAnswerSources]string {
	return [...]string{"hit", "miss", "stale", "failed", "busy", "rejected"}
}

// ResolverStats is a snapshot of a Resolver's counters since it was made.
type ResolverStats struct {
	// Answers counts every answer by where it came from (AnswerHit, ...):
	// through Exchange, the Handler and AppendCached alike.
	Answers [numAnswerSources]uint64
	// Upstreams are the upstreams in the order they were configured.
	Upstreams []UpstreamStats
}

// UpstreamStats is what was measured of one upstream.
type UpstreamStats struct {
	// Name is the upstream's URL without user, query or fragment.
	Name string
	// Failures counts tries that got no usable answer (an error, a
	// timeout, a mismatched reply).
	Failures uint64
	// RTT is the round-trip time of every try that got an answer.
	RTT HistogramSnapshot
}

// Stats returns the Resolver's counters.
func (r *Resolver) Stats() ResolverStats {
	var s ResolverStats
	for i := range s.Answers {
		s.Answers[i] = r.answers.n[i].Load()
	}
	for _, u := range r.ups.list {
		s.Upstreams = append(s.Upstreams, UpstreamStats{
			Name:     u.name,
			Failures: u.failures.Load(),
			RTT:      u.rtt.snapshot(),
		})
	}
	return s
}

// answerCounters are a Resolver's answer counters, on cache lines of their
// own: a cache hit writes one, and the fields read on every query must not
// share its line.
type answerCounters struct {
	_ [64]byte
	n [numAnswerSources]atomic.Uint64
	_ [64]byte
}

func (r *Resolver) count(source int) { r.answers.n[source].Add(1) }

// upstreamName is how Stats names an upstream: its URL, with udp:// for a
// bare address, cut to scheme, host and path.
func upstreamName(raw string) string {
	if !strings.Contains(raw, "://") {
		raw = "udp://" + raw
	}
	return redact.URL(raw)
}

const numRTTBuckets = 12

// RTTBuckets are the upper bounds of the RTT histogram's buckets.
func RTTBuckets() [numRTTBuckets]time.Duration {
	return [...]time.Duration{
		500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
		10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
		200 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second,
	}
}

// rttHistogram counts durations into RTTBuckets, and one bucket past them.
type rttHistogram struct {
	buckets [numRTTBuckets + 1]atomic.Uint64
	sum     atomic.Int64 // nanoseconds
}

func (h *rttHistogram) observe(d time.Duration) {
	i := 0
	for _, b := range RTTBuckets() {
		if d <= b {
			break
		}
		i++
	}
	h.buckets[i].Add(1)
	h.sum.Add(int64(d))
}

// HistogramSnapshot is a histogram over RTTBuckets: Buckets[i] counts the
// durations up to RTTBuckets()[i] and above the bound before it; the last
// element counts those above every bound.
type HistogramSnapshot struct {
	Buckets [numRTTBuckets + 1]uint64
	Sum     time.Duration
}

// Count is the number of durations observed.
func (s HistogramSnapshot) Count() uint64 {
	var n uint64
	for _, b := range s.Buckets {
		n += b
	}
	return n
}

func (h *rttHistogram) snapshot() HistogramSnapshot {
	var s HistogramSnapshot
	for i := range s.Buckets {
		s.Buckets[i] = h.buckets[i].Load()
	}
	s.Sum = time.Duration(h.sum.Load())
	return s
}

// handlerStatuses are the HTTP statuses a Handler answers with, the
// order of its counters.
var handlerStatuses = [...]int{
	http.StatusOK,
	http.StatusBadRequest,
	http.StatusMethodNotAllowed,
	http.StatusNotAcceptable,
	http.StatusRequestEntityTooLarge,
	http.StatusRequestURITooLong,
	http.StatusUnsupportedMediaType,
	http.StatusTooEarly,
	http.StatusServiceUnavailable,
	0, // the client went away before it was answered
}

// HandlerStats is a snapshot of a Handler's counters since it was made.
type HandlerStats struct {
	// Responses counts the requests answered with each HTTP status; status
	// 0 counts those whose client went away before an answer was ready.
	Responses map[int]uint64
}

// Total is the number of requests the Handler served.
func (s HandlerStats) Total() uint64 {
	var n uint64
	for _, v := range s.Responses {
		n += v
	}
	return n
}

// handlerCounters are a Handler's response counters, on cache lines of
// their own (see answerCounters).
type handlerCounters struct {
	_ [64]byte
	n [len(handlerStatuses)]atomic.Uint64
	_ [64]byte
}

func (c *handlerCounters) count(status int) {
	for i, s := range handlerStatuses {
		if s == status {
			c.n[i].Add(1)
			return
		}
	}
}

// Stats returns the Handler's counters.
func (h *Handler) Stats() HandlerStats {
	s := HandlerStats{Responses: make(map[int]uint64, len(handlerStatuses))}
	for i, st := range handlerStatuses {
		s.Responses[st] = h.counts.n[i].Load()
	}
	return s
}
