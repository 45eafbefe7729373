// Package deadline is a read or write deadline for a connection that is
// not a socket: its Wait channel closes once the deadline passes.
package deadline

import (
	"sync"
	"time"
)

// Deadline is a read or write deadline. A call waiting on Wait sees a
// deadline set after it began to wait: the channel is replaced only once
// it has been closed, as net.Pipe's deadlines do. Its one timer is re-armed
// by each Set, so that a deadline set before every read costs no
// allocation. The zero value has no deadline.
type Deadline struct {
	mu    sync.Mutex
	timer *time.Timer   // made by the first Set in the future
	when  time.Time     // the deadline; zero: none
	ch    chan struct{} // made when first needed
}

// Set sets the deadline to t; zero t removes it, a t in the past closes
// the channel at once.
func (d *Deadline) Set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ch == nil {
		d.ch = make(chan struct{})
	}
	if d.timer != nil {
		d.timer.Stop() // a fire already under way finds when changed
	}
	d.when = t
	closed := isClosed(d.ch)
	wait := time.Until(t)
	if !t.IsZero() && wait <= 0 {
		if !closed {
			close(d.ch)
		}
		return
	}
	if closed {
		d.ch = make(chan struct{})
	}
	switch {
	case t.IsZero():
	case d.timer == nil:
		d.timer = time.AfterFunc(wait, d.fire)
	default:
		d.timer.Reset(wait)
	}
}

// fire closes the channel if the deadline it was armed for still stands.
func (d *Deadline) fire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.when.IsZero() || time.Now().Before(d.when) {
		return // moved or removed since the timer was armed
	}
	if !isClosed(d.ch) {
		close(d.ch)
	}
}

// Wait returns a channel that is closed once the deadline passes.
func (d *Deadline) Wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ch == nil {
		d.ch = make(chan struct{})
	}
	return d.ch
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
