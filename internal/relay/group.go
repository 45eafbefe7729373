package relay

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// Group owns a server's listeners, its connections and the goroutines that
// serve them: Shutdown and Close stop accepting, close what is left and
// wait for every goroutine. The zero value is ready to use.
type Group struct {
	mu     sync.Mutex
	lns    map[net.Listener]struct{}
	conns  map[net.Conn]context.CancelFunc
	closed bool
	wg     sync.WaitGroup
}

// Add tracks c, served by the calling goroutine. It returns a context,
// derived from parent, that is canceled when the group closes c, and done,
// which the caller must call once it stops using c (done does not close
// c). If the group is closed, Add closes c and returns ok false.
func (g *Group) Add(parent context.Context, c net.Conn) (ctx context.Context, done func(), ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		c.Close()
		return nil, nil, false
	}
	if g.conns == nil {
		g.conns = make(map[net.Conn]context.CancelFunc)
	}
	ctx, cancel := context.WithCancel(parent)
	g.conns[c] = cancel
	g.wg.Add(1)
	var once sync.Once
	done = func() {
		once.Do(func() {
			g.mu.Lock()
			delete(g.conns, c)
			g.mu.Unlock()
			cancel()
			g.wg.Done()
		})
	}
	return ctx, done, true
}

// Serve accepts connections on ln and runs serve for each in a goroutine
// of the group, which closes the connection when serve returns. ctx is
// only the parent of each connection's context (as http.Server's
// BaseContext): canceling it does not stop Serve, Shutdown and Close do.
// Serve returns http.ErrServerClosed once the group is closed, or the
// listener's error if it fails for another reason.
func (g *Group) Serve(ctx context.Context, ln net.Listener, serve func(context.Context, net.Conn)) error {
	if !g.addListener(ln) {
		return http.ErrServerClosed
	}
	defer g.removeListener(ln)

	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if g.isClosed() {
				return http.ErrServerClosed
			}
			if !retryable(err) {
				return err
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff) // Close ends it: the next Accept fails at once
			continue
		}
		backoff = 0
		cctx, done, ok := g.Add(ctx, c)
		if !ok {
			return http.ErrServerClosed
		}
		go func() {
			defer done()
			defer c.Close()
			serve(cctx, c)
		}()
	}
}

// retryable reports whether an Accept error is passing (out of file
// descriptors, a connection reset before it was accepted).
func retryable(err error) bool {
	var ne net.Error
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// Shutdown stops accepting, waits for the connections in flight to end
// until ctx is done, then closes what is left and waits for its
// goroutines. It returns ctx's error if it had to close connections.
func (g *Group) Shutdown(ctx context.Context) error {
	g.stop()
	idle := make(chan struct{})
	go func() {
		g.wg.Wait()
		close(idle)
	}()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
	}
	g.closeConns()
	<-idle
	return ctx.Err()
}

// Close stops accepting, closes every connection and waits for every
// goroutine of the group.
func (g *Group) Close() error {
	g.stop()
	g.closeConns()
	g.wg.Wait()
	return nil
}

func (g *Group) stop() {
	g.mu.Lock()
	g.closed = true
	lns := g.lns
	g.lns = nil
	g.mu.Unlock()
	for ln := range lns {
		ln.Close()
	}
}

func (g *Group) closeConns() {
	g.mu.Lock()
	conns := g.conns
	g.conns = nil
	g.mu.Unlock()
	for c, cancel := range conns {
		cancel()
		c.Close()
	}
}

func (g *Group) isClosed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

func (g *Group) addListener(ln net.Listener) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	if g.lns == nil {
		g.lns = make(map[net.Listener]struct{})
	}
	g.lns[ln] = struct{}{}
	return true
}

func (g *Group) removeListener(ln net.Listener) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.lns, ln)
}
