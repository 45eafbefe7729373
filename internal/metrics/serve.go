package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Listen opens the metrics listener at addr. An address without a host
// (":9090") listens on loopback only: metrics tell about traffic, and
// are exposed beyond the machine only when asked by name. servicePort,
// if not 0, is the port of the public listener, which metrics never
// share.
func Listen(addr string, servicePort int) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if p, err := net.LookupPort("tcp", port); err == nil && p != 0 && p == servicePort {
		return nil, fmt.Errorf("%s: not on the port the service listens on", addr)
	}
	return net.Listen("tcp", net.JoinHostPort(host, port))
}

// NewServer is the HTTP server of /metrics: the Go runtime's and the
// process's metrics and set's. Serve it on a listener of its own.
func NewServer(set *Set, log *slog.Logger) *http.Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		set,
	)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}))
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// Serve serves srv on ln until it is shut down, returning nil then.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener) error {
	srv.BaseContext = func(net.Listener) context.Context { return ctx }
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}
