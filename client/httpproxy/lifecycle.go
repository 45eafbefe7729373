package httpproxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
)

// Serve serves HTTP/1.1 on ln until Shutdown or Close. ctx is only the
// parent of every request's context (http.Server's BaseContext): canceling
// it cancels those, but does not stop Serve. The caller owns ln, but
// Shutdown and Close close it. Serve returns http.ErrServerClosed once the
// server is closed.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	srv.SetKeepAlivesEnabled(true)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	if s.srv != nil {
		s.mu.Unlock()
		return errors.New("httpproxy: Serve called twice")
	}
	s.srv = srv
	s.mu.Unlock()

	return srv.Serve(ln)
}

// Shutdown stops accepting, waits until ctx is done for requests and
// tunnels in flight to end, then closes the rest. Every request's
// goroutine has ended when it returns.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	srv := s.srv
	s.mu.Unlock()
	var err error
	if srv != nil {
		err = srv.Shutdown(ctx) // does not wait for hijacked connections
	}
	idle := make(chan struct{})
	go func() {
		s.running.Wait()
		close(idle)
	}()
	select {
	case <-idle:
	case <-ctx.Done():
		s.closeAll()
		if srv != nil {
			srv.Close()
		}
		<-idle
		err = ctx.Err()
	}
	s.transport.CloseIdleConnections()
	return err
}

// Close closes the listener and every connection at once, and waits for
// the requests in flight to end.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	srv := s.srv
	s.mu.Unlock()
	s.closeAll()
	var err error
	if srv != nil {
		err = srv.Close()
	}
	s.running.Wait()
	s.transport.CloseIdleConnections()
	return err
}
