package tunnel

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// TestTunnelEcho sends 8 MiB through an echo target and checks every byte
// and the user's counters.
func TestTunnelEcho(t *testing.T) {
	run(t, func(t *testing.T, mode string) {
		ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
		target := echoTarget(t)
		c := dialVia(t, ts, mode, target)
		defer c.Close()

		data := make([]byte, 8<<20)
		rand.Read(data)
		errc := make(chan error, 1)
		go func() {
			_, err := c.Write(data)
			if err == nil {
				err = c.CloseWrite()
			}
			errc <- err
		}()
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("write: %v", err)
		}
		if sha256.Sum256(got) != sha256.Sum256(data) {
			t.Fatalf("echo differs: got %d bytes, want %d", len(got), len(data))
		}
		c.Close()
		waitIdle(t, ts.h)
		st := ts.h.cfg.Users.Stats()
		if len(st) != 1 || st[0].BytesUp != uint64(len(data)) || st[0].BytesDown != uint64(len(data)) || st[0].Total != 1 || st[0].Streams != 0 {
			t.Fatalf("stats = %+v, want %d bytes each way over 1 stream", st, len(data))
		}
	})
}

// TestHalfClose checks both directions of half-close: the client's
// CloseWrite reaches the target as EOF while the target's answer still
// arrives, and the target's CloseWrite reaches the client as EOF.
func TestHalfClose(t *testing.T) {
	run(t, func(t *testing.T, mode string) {
		ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})

		t.Run("client first", func(t *testing.T) {
			target := serveTarget(t, func(c *net.TCPConn) {
				b, _ := io.ReadAll(c) // until the client's FIN
				c.Write([]byte("got " + string(b)))
			})
			c := dialVia(t, ts, mode, target)
			c.Write([]byte("hello"))
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(c)
			if err != nil || string(got) != "got hello" {
				t.Fatalf("got %q, %v; want %q", got, err, "got hello")
			}
		})

		t.Run("target first", func(t *testing.T) {
			gotUpload := make(chan string, 1)
			target := serveTarget(t, func(c *net.TCPConn) {
				c.Write([]byte("banner"))
				c.CloseWrite()
				b, _ := io.ReadAll(c)
				gotUpload <- string(b)
			})
			c := dialVia(t, ts, mode, target)
			got, err := io.ReadAll(c)
			if err != nil || string(got) != "banner" {
				t.Fatalf("got %q, %v; want banner then EOF", got, err)
			}
			if mode == "h2stdsrv" {
				// net/http's HTTP/2 server cannot end a response and keep
				// reading the request: the stream is over (see stdH2Leg).
				return
			}
			c.Write([]byte("after EOF"))
			c.CloseWrite()
			select {
			case s := <-gotUpload:
				if s != "after EOF" {
					t.Fatalf("target got %q after its FIN, want %q", s, "after EOF")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("target never got the client's data after its FIN")
			}
		})
	})
}

// TestTargetClosesFirst: a target that sends 1 MiB and closes; the client
// gets all of it, then EOF.
func TestTargetClosesFirst(t *testing.T) {
	run(t, func(t *testing.T, mode string) {
		ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
		data := make([]byte, 1<<20)
		rand.Read(data)
		target := serveTarget(t, func(c *net.TCPConn) {
			io.ReadFull(c, make([]byte, 2)) // unread bytes would make close send RST
			c.Write(data)
		})
		c := dialVia(t, ts, mode, target)
		c.Write([]byte("go")) // a client speaks first, like HTTP
		got, err := io.ReadAll(c)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("got %d bytes, %v; want %d and EOF", len(got), err, len(data))
		}
		c.Close() // the tunnel stays half-open until the client is done too
		waitIdle(t, ts.h)
	})
}

// TestClientVanishes: the client disappears mid-download; the target's
// connection is closed and the tunnel is gone.
func TestClientVanishes(t *testing.T) {
	run(t, func(t *testing.T, mode string) {
		ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
		targetDone := make(chan error, 1)
		target := serveTarget(t, func(c *net.TCPConn) {
			buf := make([]byte, 32<<10)
			for {
				if _, err := c.Write(buf); err != nil {
					targetDone <- err
					return
				}
			}
		})
		c := dialVia(t, ts, mode, target)
		c.Write([]byte("start"))
		if _, err := io.ReadFull(c, make([]byte, 1<<20)); err != nil {
			t.Fatal(err)
		}
		// Vanish: drop the transport under the stream without a goodbye.
		switch cc := c.(type) {
		case *h1Conn:
			cc.NetConn().(*net.TCPConn).SetLinger(0)
			cc.NetConn().Close()
		default:
			c.Close()
		}
		select {
		case <-targetDone:
		case <-time.After(15 * time.Second):
			t.Fatal("target still connected after the client vanished")
		}
		waitIdle(t, ts.h)
	})
}

// TestConcurrentStreams opens 1,000 tunnels at once (one connection over
// h2 and h3, a connection each over h1) and echoes through each.
func TestConcurrentStreams(t *testing.T) {
	run(t, func(t *testing.T, mode string) {
		const n = 1000
		ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
		target := echoTarget(t)
		var d *Dialer
		if mode != "h1" {
			d = newDialer(t, ts, mode, testUser, testToken)
		}
		var wg sync.WaitGroup
		errs := make(chan error, n)
		conns := make(chan net.Conn, n)
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var c net.Conn
				var err error
				if d != nil {
					c, err = d.Dial("tcp", target)
				} else {
					c, err = connectH1(ts, target, basicAuth(testUser, testToken))
				}
				if err != nil {
					errs <- err
					return
				}
				conns <- c
				msg := []byte{byte(i), byte(i >> 8), 'x'}
				if _, err := c.Write(msg); err != nil {
					errs <- err
					return
				}
				<-start // every stream is open before any finishes
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
					errs <- err
				}
			}()
		}
		waitFor(t, "1000 tunnels", 60*time.Second, func() bool { return ts.h.Active() == n || len(errs) > 0 })
		close(start)
		wg.Wait()
		close(errs)
		close(conns)
		for c := range conns {
			c.Close()
		}
		for err := range errs {
			t.Fatal(err)
		}
		waitFor(t, "tunnels to close", 20*time.Second, func() bool { return ts.h.Active() == 0 })
	})
}

// TestDialerSpreadsStreams: when a connection to the server carries
// MaxStreamsPerConn tunnels, the Dialer opens another, and closing tunnels
// frees their slots.
func TestDialerSpreadsStreams(t *testing.T) {
	for _, mode := range dialerModes {
		t.Run(mode, func(t *testing.T) {
			ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
			target := echoTarget(t)
			d, err := NewDialer(withMode(mode, DialerConfig{
				Servers:           []string{serverURL(ts.addr)},
				RootCAs:           ts.cert.Pool,
				MaxStreamsPerConn: 3,
			}))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			var conns []net.Conn
			for i := range 7 {
				c, err := d.Dial("tcp", target)
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, c)
				c.Write([]byte{byte(i)})
				b := make([]byte, 1)
				if _, err := io.ReadFull(c, b); err != nil || b[0] != byte(i) {
					t.Fatalf("echo %d: %v", i, err)
				}
			}
			d.mu.Lock()
			n := len(d.sessions)
			d.mu.Unlock()
			if n != 3 {
				t.Fatalf("7 tunnels at 3 per connection used %d connections, want 3", n)
			}
			for _, c := range conns {
				c.Close()
			}
			c, err := d.Dial("tcp", target)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			d.mu.Lock()
			n = len(d.sessions)
			d.mu.Unlock()
			if n != 1 || d.Protocol() != transport(mode) {
				t.Fatalf("after closing every tunnel: %d connections (want the preferred one only), protocol %q", n, d.Protocol())
			}
		})
	}
}

// TestTargetReset: a target that resets its connection resets the
// client's stream too; the client sees an error, not a clean EOF.
func TestTargetReset(t *testing.T) {
	run(t, func(t *testing.T, mode string) {
		ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
		read := make(chan struct{}) // the client has what the target wrote
		target := serveTarget(t, func(c *net.TCPConn) {
			io.ReadFull(c, make([]byte, 2))
			c.Write([]byte("partial"))
			<-read // a reset drops what is not yet read
			c.SetLinger(0)
			c.Close()
		})
		c := dialVia(t, ts, mode, target)
		c.Write([]byte("go"))
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		got := make([]byte, len("partial"))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "partial" {
			close(read)
			t.Fatalf("before the reset: %q, %v", got, err)
		}
		close(read)
		if rest, err := io.ReadAll(c); err == nil {
			t.Fatalf("read %q then a clean EOF; want an error after a target reset", rest)
		}
	})
}
