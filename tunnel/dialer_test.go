package tunnel

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestDialerFailover: with the first server down, the Dialer uses the
// second; with every server down, DialContext says so.
func TestDialerFailover(t *testing.T) {
	for _, mode := range append(dialerModes, "auto") {
		t.Run(mode, func(t *testing.T) {
			ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			down := ln.Addr().String()
			ln.Close() // nothing listens here (TCP or UDP) now
			d, err := NewDialer(withMode(mode, DialerConfig{
				Servers: []string{
					serverURL(down),
					serverURL(ts.addr),
				},
				RootCAs:        ts.cert.Pool,
				ConnectTimeout: 2 * time.Second,
			}))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			c, err := d.Dial("tcp", echoTarget(t))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write([]byte("x"))
			if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			if p := d.Protocol(); p != "h2" && p != "h3" || (mode != "auto" && p != transport(mode)) {
				t.Fatalf("protocol %q with transport %s", p, mode)
			}
		})
	}
	d, err := NewDialer(DialerConfig{Servers: []string{"https://a:b@127.0.0.1:1"}, Transport: "h2", ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for range 2 { // twice: a failed connect must leave no half-made session behind
		if _, err := d.Dial("tcp", "example.com:80"); err == nil || !strings.Contains(err.Error(), "no server reachable") {
			t.Fatalf("every server down: %v", err)
		}
	}
}

// TestDialerRoundTrip: ordinary requests (DoH, for the client) ride the
// tunnel's connection and reach the website; their slots come back.
func TestDialerRoundTrip(t *testing.T) {
	for _, mode := range dialerModes {
		t.Run(mode, func(t *testing.T) {
			ts := newTunnelServer(t, HandlerConfig{})
			d := newDialer(t, ts, mode, testUser, testToken)
			for range 3 {
				req, _ := http.NewRequestWithContext(context.Background(), "GET", "https://"+ts.addr+"/notes.txt", nil)
				resp, err := d.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(body) != "Just a plain website.\n" {
					t.Fatalf("%d %q", resp.StatusCode, body)
				}
			}
			d.mu.Lock()
			defer d.mu.Unlock()
			if len(d.sessions) != 1 || d.sessions[0].inUse() != 0 {
				t.Fatalf("after the requests: %d sessions, %d slots in use", len(d.sessions), d.sessions[0].inUse())
			}
		})
	}
}

// TestDialerReconnects: when the server goes away and comes back, the
// next DialContext connects again.
func TestDialerReconnects(t *testing.T) {
	for _, mode := range dialerModes {
		t.Run(mode, func(t *testing.T) {
			ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
			target := echoTarget(t)
			d := newDialer(t, ts, mode, testUser, testToken)
			echo := func() error {
				c, err := d.Dial("tcp", target)
				if err != nil {
					return err
				}
				defer c.Close()
				c.Write([]byte("x"))
				_, err = io.ReadFull(c, make([]byte, 1))
				return err
			}
			if err := echo(); err != nil {
				t.Fatal(err)
			}
			// Kill the connection under the Dialer.
			d.mu.Lock()
			for _, s := range d.sessions {
				s.close()
			}
			d.mu.Unlock()
			waitFor(t, "a working tunnel again", 20*time.Second, func() bool { return echo() == nil })
		})
	}
}

func TestDialerConfig(t *testing.T) {
	for _, cfg := range []DialerConfig{
		{},
		{Servers: []string{"http://a:b@host"}},
		{Servers: []string{"https://host"}},
		{Servers: []string{"https://a@host"}},
		{Servers: []string{"https://a:b@host"}, Transport: "quic"},
		{Servers: []string{"https://a:b@host"}, Pin: "sha256//short"},
		{Servers: []string{"https://a:b@host"}, MaxStreamsPerConn: -1},
	} {
		if _, err := NewDialer(cfg); err == nil {
			t.Errorf("NewDialer(%+v) accepted", cfg)
		} else if strings.Contains(err.Error(), ":b@") {
			t.Errorf("error shows the token: %v", err)
		}
	}
	d, err := NewDialer(DialerConfig{Servers: []string{"https://a:b@127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.DialContext(context.Background(), "udp", "x:1"); err == nil {
		t.Error("udp accepted")
	}
	d.Close()
	if _, err := d.Dial("tcp", "x:1"); !errors.Is(err, errDialerClosed) {
		t.Errorf("dial after Close: %v", err)
	}
}

// TestDialerPin: a matching pin replaces chain verification; another
// pin is refused.
func TestDialerPin(t *testing.T) {
	ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
	target := echoTarget(t)
	good := pinOf(ts)
	for _, tc := range []struct {
		pin string
		ok  bool
	}{{good, true}, {"sha256//" + strings.Repeat("A", 43) + "=", false}} {
		d, err := NewDialer(DialerConfig{Servers: []string{serverURL(ts.addr)}, Pin: tc.pin, Transport: "h2"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = d.Dial("tcp", target)
		d.Close()
		if (err == nil) != tc.ok {
			t.Errorf("pin %s: %v", tc.pin, err)
		}
	}
}
