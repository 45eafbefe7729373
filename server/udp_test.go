package server_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/porta443/porta/internal/testenv"
	"github.com/porta443/porta/server"
	"github.com/porta443/porta/tunnel"
)

// A graceful Shutdown ends the UDP flows at once (their clients read EOF)
// instead of waiting for them, which have no end of their own, until its
// grace period is over; over HTTP/2 and HTTP/3.
func TestShutdownEndsUDPFlows(t *testing.T) {
	for _, transport := range []string{"h2", "h3"} {
		t.Run(transport, func(t *testing.T) {
			echo := testenv.NewUDPEcho(t, "127.0.0.1")
			srv, ls, cert := prepare(t, server.Config{Users: []string{"alice:alice-token"}, AllowPrivate: true}, "")
			done := make(chan error, 1)
			go func() { done <- srv.Serve(context.Background(), ls) }()
			t.Cleanup(func() { srv.Close() })
			d, err := tunnel.NewDialer(tunnel.DialerConfig{
				Servers:   []string{"https://alice:alice-token@" + ls.TCP.Addr().String()},
				RootCAs:   cert.Pool,
				Transport: transport,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			c, err := d.DialContext(context.Background(), "udp", echo.Addr.String())
			if err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 10)
			if _, err := c.Write([]byte("hi")); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Read(buf); err != nil {
				t.Fatal(err)
			}
			// The flow's client reads EOF and lets go of it, as the SOCKS5
			// relay does; the client's connection, with nothing on it, then
			// closes, and Shutdown is done long before its 30 s.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			shut := make(chan error, 1)
			go func() { shut <- srv.Shutdown(ctx) }()
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			if _, err := c.Read(buf); !errors.Is(err, io.EOF) {
				t.Errorf("the flow during Shutdown: %v; want EOF", err)
			}
			c.Close()
			if err := <-shut; err != nil {
				t.Errorf("Shutdown: %v (the flow held it up)", err)
			}
			if err := <-done; !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve: %v", err)
			}
		})
	}
}
