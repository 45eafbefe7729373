//go:build unix

package tunnel

import (
	"bytes"
	"io"
	"net"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestIdleTunnelHoldsNoBuffer: a tunnel that has moved data and sits idle
// holds no copy buffer from the pool and, where the Handler's watcher waits
// for idle targets (Linux), no download goroutine; data from either side
// still wakes it, a target that speaks unprompted included; and the
// watcher's goroutine ends with the last tunnel. (Unix only: elsewhere the
// download copies through copybuf.Copy.)
func TestIdleTunnelHoldsNoBuffer(t *testing.T) {
	run(t, func(t *testing.T, mode string) {
		ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
		const tunnels = 3
		data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
		late := make(chan struct{})
		target := serveTarget(t, func(c *net.TCPConn) {
			io.ReadFull(c, make([]byte, 2))
			c.Write(data)
			line := make([]byte, 5)
			if _, err := io.ReadFull(c, line); err != nil {
				return
			}
			c.Write(line) // an echo
			select {
			case <-late:
				c.Write([]byte("late!")) // unprompted, after an idle while
			case <-time.After(20 * time.Second):
			}
			io.Copy(io.Discard, c)
		})
		var conns []halfCloser
		for range tunnels {
			c := dialVia(t, ts, mode, target)
			c.Write([]byte("go"))
			if _, err := io.ReadFull(c, make([]byte, len(data))); err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		download := runtime.FuncForPC(reflect.ValueOf((*relay).download).Pointer()).Name() + "("
		idle := func(when string) {
			t.Helper()
			var downloads int
			deadline := time.Now().Add(10 * time.Second)
			for {
				downloads = countGoroutines(download)
				lent := ts.h.pool.Lent()
				if lent == 0 && (!watchIdle || downloads == 0) {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: idle tunnels hold %d pool buffers and %d download goroutines, want none", when, lent, downloads)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		idle("after 1 MiB down")
		// The watcher's name is spelled out (it has no loop off Linux):
		// with tunnels open there must be one, so that a rename fails here
		// rather than make the check below pass for nothing.
		const watcherLoop = "tunnel.(*watcher).loop("
		if n := countGoroutines(watcherLoop); watchIdle && n != 1 {
			t.Fatalf("%d watcher goroutines with tunnels open, want 1", n)
		}

		for i, c := range conns {
			if _, err := c.Write([]byte("ping\n")); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 5)
			if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping\n" {
				t.Fatalf("tunnel %d: echo %q, %v", i, got, err)
			}
		}
		idle("after an echo")

		close(late)
		for i, c := range conns {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			got := make([]byte, 5)
			if _, err := io.ReadFull(c, got); err != nil || string(got) != "late!" {
				t.Fatalf("tunnel %d: the target's unprompted data: %q, %v", i, got, err)
			}
		}
		idle("after the target spoke unprompted")
		if n := ts.h.Active(); n != tunnels {
			t.Fatalf("%d tunnels open, want %d", n, tunnels)
		}

		// With no tunnel left, the watcher's goroutine is gone too,
		// without Handler.Close.
		for _, c := range conns {
			c.Close()
		}
		waitIdle(t, ts.h)
		waitFor(t, "the watcher to stop", 10*time.Second, func() bool {
			return countGoroutines(watcherLoop) == 0
		})
	})
}

// countGoroutines counts the goroutines whose stack has fn in it.
func countGoroutines(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var count int
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			count++
		}
	}
	return count
}
