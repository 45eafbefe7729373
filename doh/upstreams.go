package doh

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// upstreams forwards to the fastest healthy upstream and fails over to the
// next on error or timeout.
type upstreams struct {
	list       []*tracked
	perAttempt time.Duration
}

// tracked is an upstream with what has been measured of it.
type tracked struct {
	upstream
	srtt      atomic.Int64 // smoothed round-trip time, ns; 0 until measured
	fails     atomic.Int32 // failures in a row
	downUntil atomic.Int64 // unix ns before which it is tried last
}

// exchange asks the upstreams in order of health and round-trip time, each
// for at most perAttempt, going round them twice while ctx lasts.
func (us *upstreams) exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	order := us.order(time.Now())
	var errs []error
	var soft *dns.Msg // a SERVFAIL or REFUSED, returned if no one does better
	for round := 0; round < 2 && soft == nil; round++ {
		for _, u := range order {
			if ctx.Err() != nil {
				return nil, errors.Join(append(errs, ctx.Err())...)
			}
			m.Id = dns.Id()
			actx, cancel := context.WithTimeout(ctx, us.perAttempt)
			start := time.Now()
			r, err := u.exchange(actx, m)
			cancel()
			if err == nil {
				err = checkReply(m, r)
			}
			if err == nil {
				u.succeeded(time.Since(start))
				if r.Rcode != dns.RcodeServerFailure && r.Rcode != dns.RcodeRefused {
					return r, nil
				}
				soft = r
				continue
			}
			u.failed(time.Now())
			errs = append(errs, err)
		}
	}
	if soft != nil {
		return soft, nil
	}
	return nil, errors.Join(errs...)
}

// order sorts the upstreams: healthy ones first, fastest first (unmeasured
// ones count as fastest, so each gets tried); then those marked down, the
// soonest back first.
func (us *upstreams) order(now time.Time) []*tracked {
	if len(us.list) == 1 {
		return us.list
	}
	o := slices.Clone(us.list)
	t := now.UnixNano()
	slices.SortStableFunc(o, func(a, b *tracked) int {
		da, db := a.downUntil.Load(), b.downUntil.Load()
		aDown, bDown := da > t, db > t
		switch {
		case aDown != bDown:
			if aDown {
				return 1
			}
			return -1
		case aDown:
			return cmpInt64(da, db)
		}
		return cmpInt64(a.srtt.Load(), b.srtt.Load())
	})
	return o
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (u *tracked) succeeded(rtt time.Duration) {
	u.fails.Store(0)
	u.downUntil.Store(0)
	old := u.srtt.Load()
	if old == 0 {
		u.srtt.Store(int64(rtt))
		return
	}
	u.srtt.Store((7*old + int64(rtt)) / 8)
}

// failed marks u down for a backoff that doubles with each failure in a row,
// from 1 s up to 32 s.
func (u *tracked) failed(now time.Time) {
	n := min(u.fails.Add(1), 6)
	u.downUntil.Store(now.Add(time.Second << (n - 1)).UnixNano())
}

var errMismatch = errors.New("upstream answered a different question")

// checkReply rejects an answer that is not to the question asked.
func checkReply(q, r *dns.Msg) error {
	if r == nil || !r.Response {
		return errors.New("upstream sent no response")
	}
	if len(r.Question) == 0 && r.Rcode != dns.RcodeSuccess {
		return nil // some servers drop the question from errors
	}
	if len(r.Question) != 1 || r.Question[0].Qtype != q.Question[0].Qtype ||
		r.Question[0].Qclass != q.Question[0].Qclass ||
		!equalFoldASCII(r.Question[0].Name, q.Question[0].Name) {
		return errMismatch
	}
	return nil
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
