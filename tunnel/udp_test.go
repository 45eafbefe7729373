package tunnel

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/porta443/porta/internal/testenv"
)

// udpModes are the Dialer's transports that carry CONNECT-UDP: internal/h2
// against either HTTP/2 server, and HTTP/3 (not HTTP/1.1, whose RFC 9298
// form is an Upgrade, nor net/http's client: see TestUDPNotOnStdClient).
var udpModes = []string{"h2", "h2stdsrv", "h3"}

// serveUDPEcho answers every datagram on 127.0.0.1 with the same bytes.
func serveUDPEcho(t testing.TB) string { return testenv.NewUDPEcho(t, "127.0.0.1").Addr.String() }

func newUDPServer(t testing.TB, cfg HandlerConfig) *testServer {
	t.Helper()
	cfg.AllowPrivate = true
	return newTunnelServer(t, cfg)
}

func dialUDP(t testing.TB, d *Dialer, target string) net.Conn {
	t.Helper()
	c, err := d.DialContext(context.Background(), "udp", target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// exchange writes p and reads one datagram back, within 10 s.
func exchange(t testing.TB, c net.Conn, p []byte) ([]byte, error) {
	t.Helper()
	if _, err := c.Write(p); err != nil {
		return nil, err
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1<<17)
	n, err := c.Read(buf)
	return buf[:n], err
}

// Datagrams of every size a path can carry come back whole, to a target
// named by address or by name (resolved by the server), over each
// transport; on HTTP/3 those too large for a QUIC datagram ride capsules.
func TestUDPEcho(t *testing.T) {
	runOver(t, udpModes, func(t *testing.T, mode string) {
		echo := serveUDPEcho(t)
		ts := newUDPServer(t, HandlerConfig{Resolver: mapResolver{"echo.test": {netip.MustParseAddr("127.0.0.1")}}})
		d := newDialer(t, ts, mode, testUser, testToken)
		_, port, _ := net.SplitHostPort(echo)
		for _, target := range []string{echo, "echo.test:" + port} {
			c := dialUDP(t, d, target)
			for _, size := range []int{0, 1, 1200, 1500, 9000, MaxUDPPayload} {
				p := bytes.Repeat([]byte{byte(size)}, size)
				got, err := exchange(t, c, p)
				if err != nil {
					t.Fatalf("%s, %d bytes: %v", target, size, err)
				}
				if !bytes.Equal(got, p) {
					t.Fatalf("%s, %d bytes: got %d bytes back", target, size, len(got))
				}
			}
			if _, err := c.Write(make([]byte, MaxUDPPayload+1)); err == nil {
				t.Errorf("a %d-byte datagram was taken", MaxUDPPayload+1)
			}
		}
		// The server counts a datagram down once it sent it: the client
		// may have it first.
		waitFor(t, "12 datagrams each way in UDPStats", 5*time.Second, func() bool {
			st := ts.h.UDPStats()
			return st.Flows == 2 && st.DatagramsUp == 12 && st.DatagramsDown == 12
		})
	})
}

// 2,000 numbered datagrams each way, at most 32 in flight (quic-go holds
// 32 HTTP Datagrams per stream for its reader and drops the rest, as a
// full socket buffer does): every one that comes back is whole and comes
// once; loss, duplicates and reordering are counted.
func TestUDPBurst(t *testing.T) {
	runOver(t, udpModes, func(t *testing.T, mode string) {
		echo := serveUDPEcho(t)
		ts := newUDPServer(t, HandlerConfig{})
		c := dialUDP(t, newDialer(t, ts, mode, testUser, testToken), echo)
		recv := func(b []byte) (int, error) {
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			return c.Read(b)
		}
		n := testenv.ExchangeNumbered(t, 2000, 32, 512, func(p []byte) error { _, err := c.Write(p); return err }, recv)
		t.Logf("%s: %s", mode, n)
		n.Check(t)
	})
}

// Refusals reach the client as a *RefusedError from Read: a private
// target without AllowPrivate, a user at the flow limit; and a client
// without valid credentials gets the website's answer.
func TestUDPRefused(t *testing.T) {
	runOver(t, udpModes, func(t *testing.T, mode string) {
		echo := serveUDPEcho(t)
		refusedBy := func(c net.Conn) int {
			t.Helper()
			_, err := exchange(t, c, []byte("hi"))
			var re *RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("error %v; want a refusal", err)
			}
			return re.Status
		}

		strict := newTunnelServer(t, HandlerConfig{})
		if got := refusedBy(dialUDP(t, newDialer(t, strict, mode, testUser, testToken), echo)); got != http.StatusForbidden {
			t.Errorf("a loopback target: %d; want 403", got)
		}
		site := http.StatusNotFound // what the website answers a CONNECT-UDP path
		if got := refusedBy(dialUDP(t, newDialer(t, strict, mode, testUser, "wrong"), echo)); got != site {
			t.Errorf("a wrong token: %d; want the website's %d", got, site)
		}

		users, err := NewUsers(UsersConfig{Users: []string{testUser + ":" + testToken}, MaxUDPFlows: 1})
		if err != nil {
			t.Fatal(err)
		}
		limited := newUDPServer(t, HandlerConfig{Users: users})
		d := newDialer(t, limited, mode, testUser, testToken)
		first := dialUDP(t, d, echo)
		if _, err := exchange(t, first, []byte("one")); err != nil {
			t.Fatal(err)
		}
		if got := refusedBy(dialUDP(t, d, echo)); got != http.StatusTooManyRequests {
			t.Errorf("a second flow over the limit of 1: %d; want 429", got)
		}
		if _, err := exchange(t, first, []byte("still")); err != nil {
			t.Errorf("the first flow after the refusal: %v", err)
		}
	})
}

// A flow that carries nothing for the idle timeout is ended by the
// server, and the client's Read says so; CloseUDP ends the others, and
// Handler.Close what came after.
func TestUDPIdleAndClose(t *testing.T) {
	runOver(t, udpModes, func(t *testing.T, mode string) {
		echo := serveUDPEcho(t)
		ts := newUDPServer(t, HandlerConfig{UDPIdleTimeout: 300 * time.Millisecond})
		d := newDialer(t, ts, mode, testUser, testToken)
		c := dialUDP(t, d, echo)
		if _, err := exchange(t, c, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 10)); !errors.Is(err, io.EOF) {
			t.Errorf("after the idle timeout: %v; want EOF", err)
		}
		waitFor(t, "no active flow", 5*time.Second, func() bool { return ts.h.UDPStats().Active == 0 })

		busy := newUDPServer(t, HandlerConfig{})
		c = dialUDP(t, newDialer(t, busy, mode, testUser, testToken), echo)
		if _, err := exchange(t, c, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		busy.h.CloseUDP()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 10)); !errors.Is(err, io.EOF) {
			t.Errorf("after CloseUDP: %v; want EOF", err)
		}
		c = dialUDP(t, newDialer(t, busy, mode, testUser, testToken), echo)
		if _, err := exchange(t, c, []byte("again")); err != nil {
			t.Fatalf("a new flow after CloseUDP: %v", err)
		}
		busy.h.Close()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 10)); err == nil {
			t.Error("a flow went on after Handler.Close")
		}
		waitFor(t, "no active flow after Close", 5*time.Second, func() bool { return busy.h.UDPStats().Active == 0 })
	})
}

// net/http's HTTP/2 client cannot send extended CONNECT: dialing UDP on
// it says so at once.
func TestUDPNotOnStdClient(t *testing.T) {
	ts := newUDPServer(t, HandlerConfig{})
	d := newDialer(t, ts, "h2std", testUser, testToken)
	c, err := d.DialContext(context.Background(), "udp", serveUDPEcho(t))
	if err == nil {
		c.Close()
		t.Fatal("a UDP flow over net/http's HTTP/2 client")
	}
	if !errors.Is(err, errNotSupported) {
		t.Errorf("error %v; want errNotSupported", err)
	}
}

// BenchmarkUDPEcho: one datagram out and its echo back through a flow,
// 32 in flight, per op.
func BenchmarkUDPEcho(b *testing.B) {
	for _, mode := range []string{"h2", "h3"} {
		b.Run(mode, func(b *testing.B) {
			echo := serveUDPEcho(b)
			ts := newUDPServer(b, HandlerConfig{})
			c := dialUDP(b, newDialer(b, ts, mode, testUser, testToken), echo)
			p := make([]byte, 1200)
			buf := make([]byte, 2048)
			if _, err := exchange(b, c, p); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(p)))
			b.ResetTimer()
			inflight := 0
			for i := 0; i < b.N; {
				for inflight < 32 && i+inflight < b.N {
					if _, err := c.Write(p); err != nil {
						b.Fatal(err)
					}
					inflight++
				}
				c.SetReadDeadline(time.Now().Add(time.Second))
				if _, err := c.Read(buf); err != nil {
					inflight = 0 // lost: go on
					continue
				}
				inflight--
				i++
			}
		})
	}
}

// A reader that falls behind loses what comes past its queue, as with a
// full socket buffer, and the Dialer counts it; what was queued is read,
// in order. Over HTTP/2, where the way loses nothing once the server has
// a datagram.
func TestUDPReaderBehind(t *testing.T) {
	runOver(t, []string{"h2", "h2stdsrv"}, func(t *testing.T, mode string) {
		echo := serveUDPEcho(t)
		ts := newUDPServer(t, HandlerConfig{})
		d := newDialer(t, ts, mode, testUser, testToken)
		c := dialUDP(t, d, echo)
		for i := range 2 * udpQueue {
			if _, err := c.Write(binary.BigEndian.AppendUint16(nil, uint16(i))); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "a datagram dropped", 10*time.Second, func() bool { return d.Stats().UDPDropped > 0 })
		buf := make([]byte, 10)
		last := -1
		for i := range udpQueue {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := c.Read(buf)
			if err != nil || n != 2 {
				t.Fatalf("datagram %d of the queue: %v, %v", i, buf[:n], err)
			}
			if seq := int(binary.BigEndian.Uint16(buf)); seq <= last {
				t.Fatalf("datagram %d after %d", seq, last)
			} else {
				last = seq
			}
		}
	})
}
