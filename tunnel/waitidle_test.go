package tunnel

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// waitIdle waits for every tunnel of h to close, 10 s at most.
func waitIdle(t testing.TB, h *Handler) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.WaitIdle(ctx); err != nil {
		t.Fatalf("tunnels still open (%d): %v", h.Active(), err)
	}
}

// TestWaitIdle: WaitIdle returns at once with no tunnel open, waits while
// one is, until its ctx ends, and returns when the last one closes.
func TestWaitIdle(t *testing.T) {
	run(t, func(t *testing.T, mode string) {
		ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
		waitIdle(t, ts.h)

		c := dialVia(t, ts, mode, echoTarget(t))
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil { // the Dialer's CONNECT goes with the first bytes
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
			t.Fatal(err)
		}
		if n := ts.h.Active(); n != 1 {
			t.Fatalf("%d tunnels open, want 1", n)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := ts.h.WaitIdle(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WaitIdle with a tunnel open: %v, want the context's deadline", err)
		}

		done := make(chan error, 1)
		go func() { done <- ts.h.WaitIdle(context.Background()) }()
		c.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("WaitIdle did not return after the tunnel closed")
		}
		if n := ts.h.Active(); n != 0 {
			t.Fatalf("WaitIdle returned with %d tunnels open", n)
		}
	})
}
