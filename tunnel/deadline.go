package tunnel

import (
	"sync"
	"time"
)

// deadline is a read or write deadline: wait returns a channel closed once
// it has passed, nil while none is set.
type deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	ch    chan struct{}
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		d.ch = nil // the timer fired: it closes (or closed) that channel
	}
	d.timer = nil
	if d.ch != nil {
		select {
		case <-d.ch:
			d.ch = nil // closed by an earlier set to a past time
		default:
		}
	}
	if t.IsZero() {
		return
	}
	if d.ch == nil {
		d.ch = make(chan struct{})
	}
	ch := d.ch
	if wait := time.Until(t); wait > 0 {
		d.timer = time.AfterFunc(wait, func() { close(ch) })
		return
	}
	close(ch)
}

func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}
