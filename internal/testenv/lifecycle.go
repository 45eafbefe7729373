package testenv

import (
	"context"
	"errors"
	"net/http"
	"testing"
)

// ServeOutlivedItsContext checks what DESIGN.md's lifecycle says of a
// Serve whose ctx was canceled (after the caller checked that it still
// serves): it has not returned, and shutdown ends it with
// http.ErrServerClosed. served receives what Serve returned.
func ServeOutlivedItsContext(t testing.TB, served <-chan error, shutdown func(context.Context) error) {
	t.Helper()
	select {
	case err := <-served:
		t.Fatalf("Serve returned when its ctx was canceled: %v", err)
	default:
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
}
