package tunnel

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// clientLeg is the client's side of one tunnel on one transport.
type clientLeg interface {
	// Read returns data from the client; io.EOF when it half-closed.
	Read(p []byte) (int, error)
	// Write sends p to the client and flushes it.
	Write(p []byte) error
	// CloseWrite tells the client that the target is done sending. It
	// reports whether the leg can keep reading afterwards (a true
	// half-close); if not, the relay stops reading from the client.
	CloseWrite() (halfOpen bool)
	// StopRead makes a blocked Read return.
	StopRead()
	// Abort resets both directions, from any goroutine.
	Abort()
	// Finish releases the leg once the relay is over (from the handler's
	// goroutine): a clean end, or the reset recorded by Abort.
	Finish()
}

// relay moves bytes between a client leg and a target until both
// directions end, a side fails (both are reset), the tunnel sits idle for
// the idle timeout, or the Handler closes.
type relay struct {
	leg    clientLeg
	target *net.TCPConn
	us     *user
	pool   *bufPool

	idle       time.Duration
	lastActive atomic.Int64
	timer      *time.Timer

	stopping atomic.Bool // the relay stopped reading the client on purpose

	mu       sync.Mutex // orders abort against the end of the relay
	aborted  bool
	finished bool // leg.Finish may have run: the leg must not be touched
}

func (rl *relay) touch() { rl.lastActive.Store(time.Now().UnixNano()) }

// abort resets both sides, once, unless the relay is already over (a late
// idle timer or Handler.Close must not touch a finished HTTP/2 response).
func (rl *relay) abort() {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if rl.aborted || rl.finished {
		return
	}
	rl.aborted = true
	rl.target.SetLinger(0)
	rl.target.Close()
	rl.leg.Abort()
}

// finish marks the relay over; after it, abort does nothing.
func (rl *relay) finish() {
	rl.mu.Lock()
	rl.finished = true
	rl.mu.Unlock()
}

func (rl *relay) checkIdle() {
	since := time.Since(time.Unix(0, rl.lastActive.Load()))
	if since >= rl.idle {
		rl.abort()
		return
	}
	rl.timer.Reset(rl.idle - since)
}

// run relays until the end and returns the error that ended it, if any.
// It returns only once both directions are done.
func (h *Handler) runRelay(leg clientLeg, target *net.TCPConn, us *user) error {
	rl := &relay{leg: leg, target: target, us: us, pool: &h.pool, idle: h.cfg.IdleTimeout}
	rl.touch()
	if !h.track(rl) {
		rl.abort()
		rl.finish()
		leg.Finish()
		return errClosed
	}
	defer h.untrack(rl)
	rl.timer = time.AfterFunc(time.Hour, rl.checkIdle)
	rl.timer.Reset(rl.idle) // after the assignment checkIdle relies on

	upDone := make(chan error, 1)
	go func() {
		_, err := adaptiveCopy(func(p []byte) error {
			_, err := target.Write(p)
			return err
		}, leg, rl.pool, func(n int) {
			us.c.bytesUp.Add(uint64(n))
			rl.touch()
		})
		switch {
		case err == nil:
			target.CloseWrite()
		case rl.stopping.Load():
			err = nil
		default:
			rl.abort()
		}
		upDone <- err
	}()

	_, downErr := adaptiveCopy(leg.Write, target, rl.pool, func(n int) {
		us.c.bytesDown.Add(uint64(n))
		rl.touch()
	})
	if downErr != nil {
		rl.abort()
	} else if !leg.CloseWrite() {
		rl.stopping.Store(true)
		leg.StopRead()
	}
	upErr := <-upDone
	rl.timer.Stop()
	target.Close()
	rl.finish()
	leg.Finish()
	if downErr != nil {
		return downErr
	}
	return upErr
}
