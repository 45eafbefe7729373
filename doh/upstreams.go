package doh

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// upstreams forwards to the fastest healthy upstream and fails over to the
// next on error or timeout.
type upstreams struct {
	list []*tracked
}

// tracked is an upstream with what has been measured of it.
type tracked struct {
	upstream
	srtt      atomic.Int64 // smoothed round-trip time, ns; 0 until measured
	fails     atomic.Int32 // failures in a row
	downUntil atomic.Int64 // unix ns before which it is tried last

	name     string // for Stats
	failures atomic.Uint64
	rtt      rttHistogram
}

// exchange asks the upstreams for the answer to q, a query in wire form, in
// order of health and round-trip time, each for at most AttemptTimeout, going
// round them twice while ctx lasts. SERVFAIL and REFUSED move on to the
// next upstream but are returned when no one does better.
//
// order is the upstreams in the order to try them, from us.order. first,
// when not nil, is how a try at order[0] over UDP made before ended.
func (us *upstreams) exchange(ctx context.Context, q []byte, order []*tracked, first *firstTry) ([]byte, error) {
	var errs []error
	var soft []byte
	for round := 0; round < 2 && soft == nil; round++ {
		for i, u := range order {
			// Each upstream bounds its own attempt by AttemptTimeout: a
			// context per attempt would cost a timer and allocations on
			// every miss.
			start := time.Now()
			var r []byte
			var err error
			if round == 0 && i == 0 && first != nil {
				start = first.start
				r, err = u.upstream.(*udpUpstream).after(ctx, q, first.r, first.err)
			} else {
				if ctx.Err() != nil {
					return nil, errors.Join(append(errs, ctx.Err())...)
				}
				r, err = u.exchange(ctx, q)
			}
			if err == nil {
				err = checkReply(q, r)
			}
			if err != nil {
				u.failed(time.Now())
				errs = append(errs, err)
				continue
			}
			u.succeeded(time.Since(start))
			if softFailure(r) {
				soft = r
				continue
			}
			return r, nil
		}
	}
	if soft != nil {
		return soft, nil
	}
	return nil, errors.Join(errs...)
}

// softFailure reports an answer that moves on to the next upstream but is
// kept in case none does better: SERVFAIL or REFUSED.
func softFailure(r []byte) bool {
	rcode := r[3] & 0x0F
	return rcode == dns.RcodeServerFailure || rcode == dns.RcodeRefused
}

// firstTry is how a try at the first upstream over UDP ended.
type firstTry struct {
	start time.Time
	udpResult
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
	u.rtt.observe(rtt)
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
	u.failures.Add(1)
	n := min(u.fails.Add(1), 6)
	u.downUntil.Store(now.Add(time.Second << (n - 1)).UnixNano())
}

var errMismatch = errors.New("upstream answered a different question")

// checkReply rejects an answer that is not to the question asked: q is a
// query with one question, r the answer in wire form.
func checkReply(q, r []byte) error {
	if len(r) < 12 || r[2]&0x80 == 0 || r[0] != q[0] || r[1] != q[1] || (r[2]^q[2])&0x78 != 0 {
		return errMismatch
	}
	switch binary.BigEndian.Uint16(r[4:]) {
	case 0:
		if r[3]&0x0F != dns.RcodeSuccess {
			return nil // some servers drop the question from errors
		}
	case 1:
		qEnd, err := questionName(q, 12)
		if err != nil {
			return err
		}
		qEnd += 4
		if len(r) >= qEnd && equalFoldASCII(r[12:qEnd], q[12:qEnd]) {
			return nil
		}
	}
	return errMismatch
}

func equalFoldASCII(a, b []byte) bool {
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
