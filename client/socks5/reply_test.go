package socks5

import (
	"context"
	"errors"
	"fmt"
	"github.com/porta443/porta/internal/relay/relaytest"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"
)

type codedError byte

func (e codedError) Error() string    { return fmt.Sprintf("tunnel said %d", byte(e)) }
func (e codedError) SOCKSReply() byte { return byte(e) }

// refusedAddr is a loopback address where nothing listens.
func refusedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

type pendingConn = relaytest.PendingConn

var newPendingConn = relaytest.NewPendingConn

// TestNoFastOpenReplyCodes: with fast open off, the reply code carries why
// the target could not be reached, whether Dial or Established said so.
func TestNoFastOpenReplyCodes(t *testing.T) {
	refused := refusedAddr(t)
	cases := []struct {
		name string
		err  error
		want byte
	}{
		{"reply coder", fmt.Errorf("wrapped: %w", codedError(ReplyNotAllowed)), ReplyNotAllowed},
		{"reply coder network unreachable", codedError(ReplyNetworkUnreachable), ReplyNetworkUnreachable},
		{"permission", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EACCES)}, ReplyNotAllowed},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, ReplyConnectionRefused},
		{"network unreachable", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}, ReplyNetworkUnreachable},
		{"host unreachable", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}, ReplyHostUnreachable},
		{"no such host", &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "x.test", IsNotFound: true}}, ReplyHostUnreachable},
		{"deadline", fmt.Errorf("dial: %w", context.DeadlineExceeded), ReplyTTLExpired},
		{"os timeout", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, ReplyTTLExpired},
		{"other", errors.New("tunnel: server refused: 502 Bad Gateway"), ReplyGeneralFailure},
	}
	for _, tc := range cases {
		t.Run("dial/"+tc.name, func(t *testing.T) {
			addr := startServer(t, Config{NoFastOpen: true, Dial: func(context.Context, string, string) (net.Conn, error) {
				return nil, tc.err
			}})
			c := dialSOCKS(t, addr)
			c.Write(connectMsg(atypDomain, []byte("target.test"), 80))
			mustEqual(t, "server sent", readAll(t, c), cat([]byte{5, 0}, failure(tc.want)))
		})
		t.Run("established/"+tc.name, func(t *testing.T) {
			addr := startServer(t, Config{NoFastOpen: true, Dial: func(context.Context, string, string) (net.Conn, error) {
				p := newPendingConn(t)
				p.Answer(tc.err)
				return p, nil
			}})
			c := dialSOCKS(t, addr)
			c.Write(connectMsg(atypDomain, []byte("target.test"), 80))
			mustEqual(t, "server sent", readAll(t, c), cat([]byte{5, 0}, failure(tc.want)))
		})
	}
	t.Run("real refused", func(t *testing.T) {
		addr := startServer(t, Config{NoFastOpen: true, Dial: dialDirect})
		c := dialSOCKS(t, addr)
		ap := netip.MustParseAddrPort(refused)
		c.Write(connectMsg(atypIPv4, ap.Addr().AsSlice(), ap.Port()))
		mustEqual(t, "server sent", readAll(t, c), cat([]byte{5, 0}, failure(ReplyConnectionRefused)))
	})
	t.Run("dial timeout", func(t *testing.T) {
		addr := startServer(t, Config{NoFastOpen: true, DialTimeout: 50 * time.Millisecond,
			Dial: func(context.Context, string, string) (net.Conn, error) { return newPendingConn(t), nil }})
		c := dialSOCKS(t, addr)
		c.Write(connectMsg(atypDomain, []byte("slow.test"), 80))
		mustEqual(t, "server sent", readAll(t, c), cat([]byte{5, 0}, failure(ReplyTTLExpired)))
	})
}

// TestNoFastOpenBound: with fast open off, a success reply names the
// address the server connected from.
func TestNoFastOpenBound(t *testing.T) {
	echo := echoTarget(t)
	locals := make(chan net.Addr, 1)
	addr := startServer(t, Config{NoFastOpen: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		c, err := dialDirect(ctx, network, echo)
		if err == nil {
			locals <- c.LocalAddr()
		}
		return c, err
	}})
	c := dialSOCKS(t, addr)
	c.Write(connectMsg(atypDomain, []byte("echo.test"), 7))
	got := make([]byte, 2+10)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	local := (<-locals).(*net.TCPAddr).AddrPort()
	mustEqual(t, "reply", got, cat([]byte{5, 0}, appendReply(nil, 0, local)))
	if local.Port() == 0 {
		t.Fatal("bound port 0")
	}
}

// TestFastOpen: the success reply goes out before the target answers, and
// a refusal that comes later closes the client's connection.
func TestFastOpen(t *testing.T) {
	pending := make(chan *pendingConn, 1)
	addr := startServer(t, Config{Dial: func(context.Context, string, string) (net.Conn, error) {
		p := newPendingConn(t)
		pending <- p
		return p, nil
	}})
	c := dialSOCKS(t, addr)
	c.Write(connectMsg(atypDomain, []byte("refusing.test"), 80))
	got := make([]byte, 2+10)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "reply before the target answered", got, cat([]byte{5, 0}, success))
	c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	p := <-pending
	p.Answer(codedError(ReplyConnectionRefused))
	if rest, err := io.ReadAll(c); len(rest) != 0 || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after the refusal: %q, %v; want a reset", rest, err)
	}
}

func TestReplyForProxyStatus(t *testing.T) {
	for typ, want := range map[string]byte{
		"destination_ip_prohibited": ReplyNotAllowed,
		"connection_refused":        ReplyConnectionRefused,
		"dns_error":                 ReplyHostUnreachable,
		"destination_ip_unroutable": ReplyNetworkUnreachable,
		"connection_timeout":        ReplyTTLExpired,
		"dns_timeout":               ReplyTTLExpired,
		"proxy_internal_error":      ReplyGeneralFailure,
		"":                          ReplyGeneralFailure,
		`porta; error=connection_refused; details="dial tcp 192.0.2.1:80: connect: connection refused"`: ReplyConnectionRefused,
		"porta;error=destination_ip_prohibited":                                                         ReplyNotAllowed,
		`porta; details="error=dns_error"`:                                                              ReplyGeneralFailure,
		"a; error=dns_timeout, b; error=connection_refused":                                             ReplyTTLExpired,
	} {
		if got := ReplyForProxyStatus(typ); got != want {
			t.Errorf("%q: got %#x, want %#x", typ, got, want)
		}
	}
}
