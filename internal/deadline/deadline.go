// Package deadline is a read or write deadline for a connection that is
// not a socket: its Wait channel closes once the deadline passes.
package deadline

import (
	"sync"
	"time"
)

// Deadline is a read or write deadline. A call waiting on Wait sees a
// deadline set after it began to wait: the channel is replaced only once
// it has been closed, as net.Pipe's deadlines do. The zero value has no
// deadline.
type Deadline struct {
	mu    sync.Mutex
	timer *time.Timer
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
	if d.timer != nil && !d.timer.Stop() {
		<-d.ch // the timer fired: wait until it has closed the channel
	}
	d.timer = nil
	closed := isClosed(d.ch)
	if t.IsZero() {
		if closed {
			d.ch = make(chan struct{})
		}
		return
	}
	if wait := time.Until(t); wait > 0 {
		if closed {
			d.ch = make(chan struct{})
		}
		ch := d.ch
		d.timer = time.AfterFunc(wait, func() { close(ch) })
		return
	}
	if !closed {
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
