package socks5

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestUDPAssociate: datagrams to an IPv4 address and to a name reach their
// targets, the name unresolved, and the answers come back with headers
// that name each target as the client did; a target's later datagrams
// reuse its flow.
func TestUDPAssociate(t *testing.T) {
	byIP, byName := startUDPEcho(t), startUDPEcho(t)
	d := &udpDialer{names: map[string]string{"echo.test": byName.addr.String()}}
	s, proxy := startUDPServer(t, Config{Dial: dialDirect, DialUDP: d.Dial})
	c := associate(t, proxy, netip.AddrPort{}, nil)
	for i := range 3 {
		c.echo(udpMsgTo(byIP.addr, fmt.Sprintf("to the address, #%d", i)))
		c.echo(udpMsg(atypDomain, []byte("echo.test"), 7, fmt.Sprintf("to the name, #%d", i)))
	}
	// 65,507 bytes: the most that IPv4 carries in one datagram.
	c.echo(udpMsgTo(byIP.addr, strings.Repeat("z", 65507-10)))
	if got, want := d.askedFor(), []string{byIP.addr.String(), "echo.test:7"}; !slices.Equal(got, want) {
		t.Fatalf("DialUDP asked for %q, want %q", got, want)
	}
	waitStats(t, s, UDPStats{Associations: 1, ActiveAssociations: 1, Flows: 2, ActiveFlows: 2, DatagramsIn: 7, DatagramsOut: 7})
}

// TestUDPAssociateIPv6: over IPv6, the relay listens on the IPv6 address
// the client connected to, and an IPv6 target's answers name it so.
func TestUDPAssociateIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	echo := startUDPEchoOn(t, "::1")
	s, err := New(Config{Dial: dialDirect, DialUDP: (&udpDialer{}).Dial})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		s.Close()
		<-done
	})
	c := associate(t, ln.Addr().String(), netip.AddrPort{}, nil)
	c.echo(udpMsg(atypIPv6, echo.addr.Addr().AsSlice(), echo.addr.Port(), "over IPv6"))
}

// TestUDPDrops: after the association locked to the client's address,
// datagrams from elsewhere and malformed ones are dropped and counted, and
// the association goes on.
func TestUDPDrops(t *testing.T) {
	echo := startUDPEcho(t)
	s, proxy := startUDPServer(t, Config{Dial: dialDirect, DialUDP: (&udpDialer{}).Dial})
	c := associate(t, proxy, netip.AddrPort{}, nil)
	good := udpMsgTo(echo.addr, "good")
	c.echo(good) // locks to c.pc
	waitStats(t, s, UDPStats{Associations: 1, ActiveAssociations: 1, Flows: 1, ActiveFlows: 1, DatagramsIn: 1, DatagramsOut: 1})
	other := listenUDP(t, "127.0.0.1")
	frag := udpMsgTo(echo.addr, "fragment 1")
	frag[2] = 1
	rsv := udpMsgTo(echo.addr, "reserved")
	rsv[1] = 1
	for _, tc := range []struct {
		name   string
		from   *net.UDPConn
		msg    []byte
		reason int
	}{
		{"another port", other, good, DropWrongSource},
		{"fragment", nil, frag, DropFragmented},
		{"reserved not zero", nil, rsv, DropBadHeader},
		{"short", nil, []byte{0, 0, 0}, DropBadHeader},
		{"empty", nil, nil, DropBadHeader},
		{"unknown address type", nil, []byte{0, 0, 0, 9, 127, 0, 0, 1, 0, 7, 'x'}, DropBadHeader},
		{"truncated ipv6", nil, []byte{0, 0, 0, atypIPv6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}, DropBadHeader},
		{"truncated name", nil, []byte{0, 0, 0, atypDomain, 20, 'a', 'b'}, DropBadHeader},
		{"name with a colon", nil, udpMsg(atypDomain, []byte("a:b"), 7, "x"), DropBadHeader},
		{"empty name", nil, udpMsg(atypDomain, nil, 7, "x"), DropBadHeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := s.UDPStats()
			from := c.pc
			if tc.from != nil {
				from = tc.from
			}
			if _, err := from.WriteToUDPAddrPort(tc.msg, c.relay); err != nil {
				t.Fatal(err)
			}
			// The relay reads its socket in order: once this answer is
			// back, the bad datagram was dealt with, and it got none.
			c.echo(good)
			want.Dropped[tc.reason]++
			want.DatagramsIn++
			want.DatagramsOut++
			waitStats(t, s, want)
		})
	}
}

// TestUDPWriteRejected: a datagram the flow's connection does not take
// is dropped and counted, and the flow goes on.
func TestUDPWriteRejected(t *testing.T) {
	echo := startUDPEcho(t)
	d := &udpDialer{names: map[string]string{"small.test": echo.addr.String()}, maxWrite: 1200}
	s, proxy := startUDPServer(t, Config{Dial: dialDirect, DialUDP: d.Dial})
	c := associate(t, proxy, netip.AddrPort{}, nil)
	small := func(data string) []byte { return udpMsg(atypDomain, []byte("small.test"), 7, data) }
	c.echo(small("fits"))
	c.send(small(strings.Repeat("x", 1201)))
	c.echo(small(strings.Repeat("y", 1200)))
	if got := s.UDPStats().Dropped[DropWriteFailed]; got != 1 {
		t.Fatalf("dropped for a failed write: %d, want 1", got)
	}
}

// TestUDPSourceBeforeLock: before its first datagram, an association
// takes datagrams only from the control connection's IP, and from the
// address its request named, if it named one.
func TestUDPSourceBeforeLock(t *testing.T) {
	echo := startUDPEcho(t)
	s, proxy := startUDPServer(t, Config{Dial: dialDirect, DialUDP: (&udpDialer{}).Dial})
	msg := udpMsgTo(echo.addr, "hello")
	check := func(t *testing.T, c *udpClient, stranger *net.UDPConn) {
		t.Helper()
		before := s.UDPStats().Dropped[DropWrongSource]
		if _, err := stranger.WriteToUDPAddrPort(msg, c.relay); err != nil {
			t.Fatal(err)
		}
		c.echo(msg)
		if got := s.UDPStats().Dropped[DropWrongSource]; got != before+1 {
			t.Fatalf("dropped from the wrong source: %d, want %d", got, before+1)
		}
	}
	t.Run("another ip", func(t *testing.T) {
		check(t, associate(t, proxy, netip.AddrPort{}, nil), listenUDP(t, "127.0.0.2"))
	})
	t.Run("not the port named", func(t *testing.T) {
		pc := listenUDP(t, "127.0.0.1")
		c := associate(t, proxy, pc.LocalAddr().(*net.UDPAddr).AddrPort(), pc)
		check(t, c, listenUDP(t, "127.0.0.1"))
	})
	t.Run("not the address named", func(t *testing.T) {
		pc := listenUDP(t, "127.0.0.1")
		hint := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0)
		check(t, associate(t, proxy, hint, pc), listenUDP(t, "127.0.0.2"))
	})
}

// TestUDPControlClose: closing the control connection closes the relay
// socket and every flow.
func TestUDPControlClose(t *testing.T) {
	e1, e2 := startUDPEcho(t), startUDPEcho(t)
	d := &udpDialer{}
	s, proxy := startUDPServer(t, Config{Dial: dialDirect, DialUDP: d.Dial})
	c := associate(t, proxy, netip.AddrPort{}, nil)
	c.echo(udpMsgTo(e1.addr, "one"))
	c.echo(udpMsgTo(e2.addr, "two"))
	c.ctrl.Close()
	d.conn(t, 0).waitClosed(t, "first flow")
	d.conn(t, 1).waitClosed(t, "second flow")

	// The relay socket was closed before the flows: a datagram to it now
	// is refused (ICMP port unreachable, on a connected socket).
	probe, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(c.relay))
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	probe.Write(udpMsgTo(e1.addr, "too late"))
	probe.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := probe.Read(make([]byte, 100)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("after the close, the relay answered %d bytes, %v; want connection refused", n, err)
	}
	waitFor(t, "the association to end", func() bool {
		st := s.UDPStats()
		return st.ActiveAssociations == 0 && st.ActiveFlows == 0
	})
}

// TestUDPNoDialUDP: without DialUDP, UDP ASSOCIATE is not supported.
func TestUDPNoDialUDP(t *testing.T) {
	proxy := startServer(t, Config{Dial: dialDirect})
	c := dialSOCKS(t, proxy)
	c.Write([]byte{5, 1, 0, 5, cmdAssociate, 0, atypIPv4, 0, 0, 0, 0, 0, 0})
	c.CloseWrite()
	mustEqual(t, "server sent", readAll(t, c), cat([]byte{5, 0}, failure(ReplyCommandNotSupported)))
}

// TestUDPTooManyFlows: a datagram to one target more than MaxUDPFlows is
// dropped and counted, and the flows open go on.
func TestUDPTooManyFlows(t *testing.T) {
	echo := startUDPEcho(t)
	d := &udpDialer{names: map[string]string{"a.test": echo.addr.String(), "b.test": echo.addr.String(), "c.test": echo.addr.String()}}
	s, proxy := startUDPServer(t, Config{Dial: dialDirect, DialUDP: d.Dial, MaxUDPFlows: 2})
	c := associate(t, proxy, netip.AddrPort{}, nil)
	to := func(name, data string) []byte { return udpMsg(atypDomain, []byte(name), 53, data) }
	c.echo(to("a.test", "1"))
	c.echo(to("b.test", "2"))
	c.send(to("c.test", "3"))
	c.echo(to("a.test", "4"))
	c.echo(to("b.test", "5"))
	if got := s.UDPStats().Dropped[DropTooManyFlows]; got != 1 {
		t.Fatalf("dropped for too many flows: %d, want 1", got)
	}
	if got := d.askedFor(); len(got) != 2 {
		t.Fatalf("DialUDP asked for %q", got)
	}
}

// TestUDPFlowEnds: a flow ends when it idles for UDPIdleTimeout or its
// Read fails, and the target's next datagram dials it again.
func TestUDPFlowEnds(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		echo := startUDPEcho(t)
		d := &udpDialer{names: map[string]string{"echo.test": echo.addr.String()}}
		s, proxy := startUDPServer(t, Config{Dial: dialDirect, DialUDP: d.Dial, UDPIdleTimeout: 200 * time.Millisecond})
		c := associate(t, proxy, netip.AddrPort{}, nil)
		msg := udpMsg(atypDomain, []byte("echo.test"), 7, "ping")
		c.echo(msg)
		d.conn(t, 0).waitClosed(t, "idle flow")
		c.echo(msg)
		if got, want := d.askedFor(), []string{"echo.test:7", "echo.test:7"}; !slices.Equal(got, want) {
			t.Fatalf("DialUDP asked for %q, want %q", got, want)
		}
		if st := s.UDPStats(); st.Flows != 2 {
			t.Fatalf("flows %d, want 2", st.Flows)
		}
		waitFor(t, "the idle flow's goroutine to end", func() bool { return s.UDPStats().ActiveFlows == 1 })
	})
	t.Run("read fails", func(t *testing.T) {
		dead := listenUDP(t, "127.0.0.1") // closed below: nothing listens there
		d := &udpDialer{names: map[string]string{"dead.test": dead.LocalAddr().String()}}
		dead.Close()
		s, proxy := startUDPServer(t, Config{Dial: dialDirect, DialUDP: d.Dial})
		c := associate(t, proxy, netip.AddrPort{}, nil)
		// The ICMP error that answers a datagram to nowhere fails the
		// flow's Read.
		c.send(udpMsg(atypDomain, []byte("dead.test"), 9, "anyone?"))
		d.conn(t, 0).waitClosed(t, "refused flow")
		c.send(udpMsg(atypDomain, []byte("dead.test"), 9, "anyone now?"))
		d.conn(t, 1).waitClosed(t, "refused flow, again")
		if got, want := d.askedFor(), []string{"dead.test:9", "dead.test:9"}; !slices.Equal(got, want) {
			t.Fatalf("DialUDP asked for %q, want %q", got, want)
		}
		if st := s.UDPStats(); st.Flows != 2 || st.DatagramsIn != 2 {
			t.Fatalf("flows %d, datagrams in %d; want 2, 2", st.Flows, st.DatagramsIn)
		}
	})
}

// TestUDPSlowDial: while one target's dial is slow, the others are
// served; what was sent to it meanwhile is queued, a few, in order, and
// the rest dropped and counted. A failed dial drops what was queued.
func TestUDPSlowDial(t *testing.T) {
	echo := startUDPEcho(t)
	release := make(chan struct{})
	d := &udpDialer{
		names: map[string]string{"slow.test": echo.addr.String()},
		hold: func(ctx context.Context, host string) error {
			switch host {
			case "slow.test":
				select {
				case <-release:
				case <-ctx.Done():
					return ctx.Err()
				}
			case "fail.test":
				return errRefusedByTest
			}
			return nil
		},
	}
	s, proxy := startUDPServer(t, Config{Dial: dialDirect, DialUDP: d.Dial})
	c := associate(t, proxy, netip.AddrPort{}, nil)
	slow := func(i int) []byte { return udpMsg(atypDomain, []byte("slow.test"), 7, fmt.Sprintf("slow #%d", i)) }
	for i := range maxQueued + 2 {
		c.send(slow(i))
	}
	c.echo(udpMsgTo(echo.addr, "not held up"))
	if got := s.UDPStats().Dropped[DropDialing]; got != 2 {
		t.Fatalf("dropped while dialing: %d, want 2", got)
	}
	close(release)
	for i := range maxQueued {
		mustEqual(t, "queued datagram", c.recv(), slow(i))
	}
	c.echo(slow(100))

	c.send(udpMsg(atypDomain, []byte("fail.test"), 7, "nobody"))
	waitFor(t, "the failed dial to be counted", func() bool { return s.UDPStats().Dropped[DropDialFailed] == 1 })
	c.echo(udpMsgTo(echo.addr, "still here"))
}

// TestUDPShutdown: Shutdown waits for an association, then ends it at its
// deadline: the control connection, the relay socket and the flows.
func TestUDPShutdown(t *testing.T) {
	echo := startUDPEcho(t)
	d := &udpDialer{}
	s, proxy := startUDPServer(t, Config{Dial: dialDirect, DialUDP: d.Dial})
	c := associate(t, proxy, netip.AddrPort{}, nil)
	c.echo(udpMsgTo(echo.addr, "hi"))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want the deadline", err)
	}
	if got := readAll(t, c.ctrl); len(got) != 0 {
		t.Fatalf("control connection got %q", got)
	}
	d.conn(t, 0).waitClosed(t, "flow")
	if st := s.UDPStats(); st.ActiveAssociations != 0 || st.ActiveFlows != 0 {
		t.Fatalf("after Shutdown: %+v", st)
	}
}

func TestNewValidatesUDP(t *testing.T) {
	for _, cfg := range []Config{
		{Dial: dialDirect, MaxUDPFlows: -1},
		{Dial: dialDirect, UDPIdleTimeout: -time.Second},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
