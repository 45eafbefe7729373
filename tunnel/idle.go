package tunnel

import (
	"sync/atomic"
	"time"
)

// idleTimer calls its func once nothing touched it for its timeout. A
// touch is one atomic store, for the hot paths; the timer re-arms itself
// for what is left when it fires early.
type idleTimer struct {
	last  atomic.Int64 // unix ns of the last touch
	timer *time.Timer
}

func (t *idleTimer) touch() { t.last.Store(time.Now().UnixNano()) }

// start touches t and arms it: onIdle runs (on the timer's goroutine)
// once d passed without a touch.
func (t *idleTimer) start(d time.Duration, onIdle func()) {
	t.touch()
	t.timer = time.AfterFunc(time.Hour, func() {
		if left := d - time.Since(time.Unix(0, t.last.Load())); left > 0 {
			t.timer.Reset(left)
			return
		}
		onIdle()
	})
	t.timer.Reset(d) // after the assignment the func relies on
}

func (t *idleTimer) stop() { t.timer.Stop() }
