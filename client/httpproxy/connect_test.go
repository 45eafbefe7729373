package httpproxy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/porta443/porta/internal/relay/relaytest"
)

type pendingConn = relaytest.PendingConn

var newPendingConn = relaytest.NewPendingConn

type statusError int

func (e statusError) Error() string   { return fmt.Sprintf("tunnel: server refused: %d", int(e)) }
func (e statusError) HTTPStatus() int { return int(e) }

// TestConnectRelay: bytes sent with the CONNECT are not lost, and each
// side's half-close reaches the other while the other direction goes on.
func TestConnectRelay(t *testing.T) {
	t.Run("pipelined and client half-close", func(t *testing.T) {
		target := relaytest.ServeTCP(t, func(c net.Conn) {
			h := sha256.New()
			io.Copy(h, c)
			c.Write(h.Sum(nil))
		})
		rec := &recordingDial{Target: target}
		proxy := startServer(t, Config{Dial: rec.Dial})
		c := dialProxy(t, proxy)
		body, sum := relaytest.Payload(t, 1<<20)
		resp, br := connect(t, c, "sum.porta.test:443", body[:1000])
		if resp.StatusCode != 200 {
			t.Fatalf("CONNECT: %s", resp.Status)
		}
		c.Write(body[1000:])
		c.CloseWrite()
		mustEqual(t, "digest", readToClose(t, br), sum[:])
		if rec.Last() != "sum.porta.test:443" {
			t.Fatalf("Dial got %q", rec.Last())
		}
	})
	t.Run("target half-close", func(t *testing.T) {
		got := make(chan []byte, 1)
		target := relaytest.ServeTCP(t, func(c net.Conn) {
			c.Write([]byte("banner"))
			c.(*net.TCPConn).CloseWrite()
			b, _ := io.ReadAll(c)
			got <- b
		})
		proxy := startServer(t, Config{Dial: relaytest.DialDirect})
		c := dialProxy(t, proxy)
		_, br := connect(t, c, target, nil)
		b, err := io.ReadAll(br)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "banner", b, []byte("banner"))
		c.Write([]byte("still talking"))
		c.CloseWrite()
		select {
		case b := <-got:
			mustEqual(t, "target read after its half-close", b, []byte("still talking"))
		case <-time.After(20 * time.Second):
			t.Fatal("target never saw EOF")
		}
	})
}

// TestConnectErrors: a failed dial is answered with a status and a short
// reason, before anything was relayed; bad targets are 400 and not dialed.
func TestConnectErrors(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, tc := range []struct {
		name   string
		err    error
		status int
		reason string
	}{
		{"refused", refused, 502, "connection refused"},
		{"no such host", &net.DNSError{Err: "no such host", Name: "x.test", IsNotFound: true}, 502, "host not found"},
		{"timeout", context.DeadlineExceeded, 504, "target timed out"},
		{"not allowed", os.ErrPermission, 403, "target not allowed"},
		{"other", errors.New("boom"), 502, "cannot reach target"},
		{"status coder", fmt.Errorf("tunnel: %w", statusError(429)), 429, "too many requests"},
		{"status coder not an error status", statusError(200), 502, "cannot reach target"},
	} {
		for _, via := range []string{"dial", "established"} {
			t.Run(via+"/"+tc.name, func(t *testing.T) {
				proxy := startServer(t, Config{NoFastOpen: true, Dial: func(context.Context, string, string) (net.Conn, error) {
					if via == "dial" {
						return nil, tc.err
					}
					p := newPendingConn(t)
					p.Answer(tc.err)
					return p, nil
				}})
				c := dialProxy(t, proxy)
				resp, br := connect(t, c, "x.test:443", nil)
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != tc.status || string(body) != tc.reason+"\n" {
					t.Fatalf("%d %q", resp.StatusCode, body)
				}
				if rest := relaytest.ReadAll(t, c); len(rest) != 0 || br.Buffered() != 0 {
					t.Fatalf("more after the error: %q", rest)
				}
			})
		}
	}
	rec := &recordingDial{Target: "127.0.0.1:1"}
	proxy := startServer(t, Config{Dial: rec.Dial})
	for _, target := range []string{"x.test", "x.test:0", "x.test:99999", "x_y!.test:80", "[fe80::1%eth0]:80", ":80"} {
		t.Run(target, func(t *testing.T) {
			c := dialProxy(t, proxy)
			if resp, _ := connect(t, c, target, nil); resp.StatusCode != 400 {
				t.Fatalf("%s", resp.Status)
			}
		})
	}
	if rec.Count() != 0 {
		t.Fatalf("dialed %q", rec.Last())
	}
}

// TestConnectFastOpen: the 200 goes out before the target answers, and a
// refusal that comes later closes the client's connection.
func TestConnectFastOpen(t *testing.T) {
	pending := make(chan *pendingConn, 1)
	proxy := startServer(t, Config{Dial: func(context.Context, string, string) (net.Conn, error) {
		p := newPendingConn(t)
		pending <- p
		return p, nil
	}})
	c := dialProxy(t, proxy)
	resp, br := connect(t, c, "refusing.test:443", nil)
	if resp.StatusCode != 200 || resp.Status != "200 Connection established" {
		t.Fatalf("before the target answered: %s", resp.Status)
	}
	c.Write([]byte("hello"))
	p := <-pending
	p.Answer(errors.New("tunnel: server refused: 502 Bad Gateway"))
	if rest, err := io.ReadAll(br); len(rest) != 0 || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after the refusal: %q, %v; want a reset", rest, err)
	}
}
