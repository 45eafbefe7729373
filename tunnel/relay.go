package tunnel

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/porta443/porta/internal/copybuf"
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
//
// An idle tunnel keeps one goroutine and no copy buffer. The upload
// (client to target) waits for the client on the goroutine that owns the
// tunnel: the handler's on HTTP/2, one of the Handler's on HTTP/1.1 and
// HTTP/3. The download (target to client) runs on a goroutine only while
// the target has data; in between, the Handler's watcher waits for the
// target to become readable (see download.go). Copy buffers come from the
// Handler's pool for each read that finds data and go back after the write.
type relay struct {
	h      *Handler
	leg    clientLeg
	target *net.TCPConn
	rc     syscall.RawConn // target's
	us     *user
	r      *http.Request // for the log

	idle idleTimer

	stopping atomic.Bool // the relay stopped reading the client on purpose

	downDone sync.WaitGroup // the download is over
	downErr  error          // what ended it; written before downDone.Done
	upErr    error          // what ended the upload
	pumpBuf  *[]byte        // what readDown read: pumpBuf[:pumpN]
	pumpN    int
	pumpIdle bool
	pumpErr  error
	watch    watchState // guarded by the watcher's lock

	mu       sync.Mutex // orders abort against the end of the relay
	aborted  bool
	cause    error // why it was aborted
	finished bool  // leg.Finish may have run: the leg must not be touched
}

var errIdle = errors.New("tunnel: idle timeout")

func (rl *relay) touch() { rl.idle.touch() }

// abort resets both sides, once, unless the relay is already over (a late
// idle timer or Handler.Close must not touch a finished HTTP/2 response).
// A download that waits in the watcher ends here.
func (rl *relay) abort(cause error) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if rl.aborted || rl.finished {
		return
	}
	rl.aborted = true
	rl.cause = cause
	rl.target.SetLinger(0)
	rl.target.Close()
	rl.leg.Abort()
	if rl.h.watch.cancel(rl) {
		rl.downDone.Done()
	}
}

// finish marks the relay over; after it, abort does nothing.
func (rl *relay) finish() {
	rl.mu.Lock()
	rl.finished = true
	rl.mu.Unlock()
}

// startRelay starts relaying between leg and target: the download and the
// idle timer. The caller runs the upload, rl.run or the loop in
// ServeHTTP, and then rl.end, which gives back the tunnel's Handler slot
// and user stream (Handler.release). If the relay cannot start, both sides
// are closed and the caller still owns the slot.
func (h *Handler) startRelay(leg clientLeg, target *net.TCPConn, us *user, r *http.Request) (*relay, error) {
	rl := &relay{h: h, leg: leg, target: target, us: us, r: r}
	rc, err := target.SyscallConn()
	if err == nil && !h.track(rl) {
		err = errClosed
	}
	if err != nil {
		rl.abort(err)
		rl.finish()
		leg.Finish()
		return nil, err
	}
	rl.rc = rc
	rl.idle.start(h.cfg.IdleTimeout, func() { rl.abort(errIdle) })
	rl.downDone.Add(1)
	if err := h.watch.arm(rl); err != nil {
		rl.downEnded(err)
	}
	return rl, nil
}

// run is the upload of a tunnel that has a goroutine of its own (HTTP/1.1,
// HTTP/3), then the relay's end. Such legs cannot wait for data without a
// buffer, so a small one waits (see copybuf.Copy).
func (rl *relay) run() {
	_, err := copybuf.Copy(rl.writeTarget, rl.leg, &rl.h.pool, rl.countUp)
	rl.uploadEnded(err)
	rl.end()
}

// uploadReady moves what the client has sent to the target, once waitErr
// (what waiting for the client's data returned) says there is some. It
// reports whether the upload goes on.
func (rl *relay) uploadReady(waitErr error) bool {
	err := waitErr
	if err == nil {
		buf := rl.h.pool.Get()
		n, rerr := rl.leg.Read(*buf)
		if n > 0 {
			if werr := rl.writeTarget((*buf)[:n]); werr != nil {
				rerr = werr
			} else {
				rl.countUp(n)
			}
		}
		rl.h.pool.Put(buf)
		if rerr == nil {
			return true
		}
		err = rerr
	}
	if err == io.EOF {
		err = nil
	}
	rl.uploadEnded(err)
	return false
}

// uploadEnded passes the client's half-close on to the target, or resets
// both sides if the upload failed.
func (rl *relay) uploadEnded(err error) {
	switch {
	case err == nil:
		rl.target.CloseWrite()
	case rl.stopping.Load():
		err = nil
	default:
		rl.abort(err)
	}
	rl.upErr = err
}

// end waits for the download once the upload is over, closes both sides,
// gives back the tunnel's slot and logs.
func (rl *relay) end() {
	defer rl.h.release(rl.us) // deferred: an HTTP/2 leg's Finish may panic
	rl.downDone.Wait()
	rl.idle.stop()
	rl.target.Close()
	rl.finish()
	rl.h.untrack(rl)
	err := rl.cause // the first error, if a side failed
	if err == nil {
		err = rl.downErr
	}
	if err == nil {
		err = rl.upErr
	}
	rl.h.logf(rl.r, rl.us, "tunnel closed", err)
	rl.leg.Finish()
}

func (rl *relay) writeTarget(p []byte) error {
	_, err := rl.target.Write(p)
	return err
}

func (rl *relay) countUp(n int) {
	rl.us.c.bytesUp.Add(uint64(n))
	rl.touch()
}
