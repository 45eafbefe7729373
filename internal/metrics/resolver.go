package metrics

import (
	"github.com/porta443/porta/doh"
)

// AddResolver adds the metrics of a DNS resolver: its answers by source,
// the share of them that came fresh from its cache, and each upstream's
// round-trip times and failures.
func (s *Set) AddResolver(r *doh.Resolver) {
	names := doh.AnswerSourceNames()
	s.Counter("porta_dns_answers_total",
		"DNS answers by source: hit (fresh from the cache), miss (from the upstreams), stale (served past expiry as the upstreams failed), failed (SERVFAIL: upstreams failed), busy (SERVFAIL: too many queries in flight), rejected (malformed or unsupported query).",
		[]string{"source"}, func(emit Emit) {
			st := r.Stats()
			for i, n := range st.Answers {
				emit(float64(n), names[i])
			}
		})
	s.Gauge("porta_dns_cache_hit_ratio",
		"Share of DNS answers since start that were fresh cache hits (0 before the first answer).",
		nil, func(emit Emit) {
			st := r.Stats()
			var all uint64
			for _, n := range st.Answers {
				all += n
			}
			ratio := 0.0
			if all > 0 {
				ratio = float64(st.Answers[doh.AnswerHit]) / float64(all)
			}
			emit(ratio)
		})
	bounds := doh.RTTBuckets()
	s.Histogram("porta_dns_upstream_rtt_seconds",
		"Round-trip time of the tries at each upstream resolver that got an answer.",
		[]string{"upstream"}, func(emit EmitHistogram) {
			for _, u := range r.Stats().Upstreams {
				buckets := make(map[float64]uint64, len(bounds))
				var cum uint64
				for i, b := range bounds {
					cum += u.RTT.Buckets[i]
					buckets[b.Seconds()] = cum
				}
				emit(u.RTT.Count(), u.RTT.Sum.Seconds(), buckets, u.Name)
			}
		})
	s.Counter("porta_dns_upstream_failures_total",
		"Tries at each upstream resolver that got no usable answer.",
		[]string{"upstream"}, func(emit Emit) {
			for _, u := range r.Stats().Upstreams {
				emit(float64(u.Failures), u.Name)
			}
		})
}

// AddConns adds porta_connections_total and porta_connections_active,
// one series for each of counts, labelled with label: its key.
func (s *Set) AddConns(label string, counts map[string]*ConnCounts) {
	s.Counter("porta_connections_total", "Connections accepted.", []string{label}, func(emit Emit) {
		for k, c := range counts {
			emit(float64(c.Accepted()), k)
		}
	})
	s.Gauge("porta_connections_active", "Connections open now.", []string{label}, func(emit Emit) {
		for k, c := range counts {
			emit(float64(c.Active()), k)
		}
	})
}
