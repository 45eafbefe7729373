//go:build linux

package tunnel

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"time"
)

// watchIdle: a download gives its goroutine back as soon as the target has
// nothing to read, and the watcher waits for it.
const watchIdle = true

// watcher waits for the idle targets of all of a Handler's tunnels at
// once, and starts a tunnel's download on a new goroutine when its target
// becomes readable. It is one epoll instance, which Go's netpoller waits
// for like a socket, and one goroutine that runs only while targets are
// watched. Each target is in the epoll set once, with EPOLLONESHOT: an
// event disables it until the next arm. Closing a target takes it out.
type watcher struct {
	mu      sync.Mutex
	ep      *os.File // nil until the first arm
	epfd    int
	rc      syscall.RawConn // ep's
	armed   map[uint64]*relay
	next    uint64
	running bool // loop is running
	closed  bool
	wg      sync.WaitGroup
	events  [64]syscall.EpollEvent // loop's
}

// watchState is a relay's place in the watcher, guarded by watcher.mu.
type watchState struct {
	token      uint64 // its key in armed and its epoll event's data
	registered bool   // its target is in the epoll set
}

// arm asks for rl.download to run once rl's target is readable, at EOF or
// failed. An error means it never will.
func (w *watcher) arm(rl *relay) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errClosed
	}
	if w.ep == nil {
		if err := w.open(); err != nil {
			return err
		}
	}
	if rl.watch.token == 0 {
		w.next++
		rl.watch.token = w.next
	}
	ev := syscall.EpollEvent{
		Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
		Fd:     int32(rl.watch.token), // Fd and Pad are the event's 8 data bytes
		Pad:    int32(rl.watch.token >> 32),
	}
	op := syscall.EPOLL_CTL_MOD
	if !rl.watch.registered {
		op = syscall.EPOLL_CTL_ADD
	}
	var ctlErr error
	// Control holds the target open: a concurrent Close cannot hand its
	// descriptor number to another socket while epoll_ctl runs.
	if err := rl.rc.Control(func(fd uintptr) {
		ctlErr = syscall.EpollCtl(w.epfd, op, int(fd), &ev)
	}); err != nil {
		return err
	}
	if ctlErr != nil {
		return os.NewSyscallError("epoll_ctl", ctlErr)
	}
	rl.watch.registered = true
	w.armed[rl.watch.token] = rl
	if !w.running {
		w.running = true
		w.ep.SetReadDeadline(time.Time{}) // cancel may have set one
		w.wg.Add(1)
		go w.loop()
	}
	return nil
}

// cancel takes rl out of the watcher, once its target is closed. It
// reports whether rl was waiting there: then no download will start.
func (w *watcher) cancel(rl *relay) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if rl.watch.token == 0 || w.armed[rl.watch.token] != rl {
		return false
	}
	delete(w.armed, rl.watch.token)
	if len(w.armed) == 0 && w.running {
		w.ep.SetReadDeadline(time.Now()) // loop: nothing left to wait for
	}
	return true
}

func (w *watcher) open() error {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("epoll_create1", err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return os.NewSyscallError("setnonblock", err)
	}
	ep := os.NewFile(uintptr(fd), "epoll") // non-blocking: in the netpoller
	rc, err := ep.SyscallConn()
	if err != nil {
		ep.Close()
		return err
	}
	w.ep, w.epfd, w.rc = ep, fd, rc
	w.armed = map[uint64]*relay{}
	return nil
}

// loop waits for events until the watcher is closed or nothing is armed.
func (w *watcher) loop() {
	defer w.wg.Done()
	for {
		err := w.rc.Read(w.dispatch)
		w.mu.Lock()
		if errors.Is(err, os.ErrDeadlineExceeded) { // from cancel
			err = nil
			w.ep.SetReadDeadline(time.Time{})
		}
		if err != nil || w.closed || len(w.armed) == 0 {
			if err != nil && !w.closed {
				// The epoll instance failed: no target would be
				// watched again. The tunnels find out when they arm.
				w.closed = true
				for token, rl := range w.armed {
					delete(w.armed, token)
					go rl.download()
				}
			}
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
	}
}

// dispatch starts the downloads whose targets are ready; rc.Read calls it
// whenever the epoll instance may have events. It returns false to wait.
func (w *watcher) dispatch(fd uintptr) bool {
	for {
		n, err := syscall.EpollWait(int(fd), w.events[:], 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return false
		}
		w.mu.Lock()
		for _, ev := range w.events[:n] {
			token := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if rl := w.armed[token]; rl != nil {
				delete(w.armed, token)
				go rl.download()
			}
		}
		w.mu.Unlock()
		if n < len(w.events) {
			return true
		}
	}
}

// close stops the watcher once no tunnel arms it any more.
func (w *watcher) close() {
	w.mu.Lock()
	w.closed = true
	ep := w.ep
	w.mu.Unlock()
	if ep != nil {
		ep.Close()
	}
	w.wg.Wait()
}
