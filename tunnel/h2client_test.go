package tunnel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/porta443/porta/internal/copybuf"
)

// sourceTarget writes size bytes of a seeded stream, in writes of sizes
// that vary from 1 byte to 300 KiB, now and then a trickle of small ones
// with pauses between them, and closes: frames of every size reach the
// client, some while its reader waits, some while it is busy.
func sourceTarget(t testing.TB, size int) (addr string, digest [32]byte) {
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{1}).Read(data)
	addr = serveTarget(t, func(c *net.TCPConn) {
		defer c.Close()
		sizes := rand.New(rand.NewPCG(1, 2))
		for p := data; len(p) > 0; {
			n := min(len(p), 1+sizes.IntN(300<<10))
			if sizes.IntN(8) == 0 {
				for range 20 {
					n := min(len(p), 1+sizes.IntN(2000))
					if _, err := c.Write(p[:n]); err != nil {
						return
					}
					p = p[n:]
					time.Sleep(100 * time.Microsecond)
				}
				continue
			}
			if _, err := c.Write(p[:n]); err != nil {
				return
			}
			p = p[n:]
		}
	})
	return addr, sha256.Sum256(data)
}

// pausingWriter hashes what it is given and now and then stops for a
// moment, so that data queues up in the stream behind it.
type pausingWriter struct {
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
	n int
}

func (w *pausingWriter) write(p []byte) error {
	w.h.Write(p)
	w.n++
	if w.n%5 == 0 {
		time.Sleep(time.Millisecond)
	}
	return nil
}

// Every byte arrives in order whichever way it is read: copybuf.Copy
// (which takes the chunks of an HTTP/2 stream as they are) with a consumer
// that pauses, io.Copy (WriteTo), and Read with buffers from 1 byte to
// 300 KiB.
func TestDownloadPaths(t *testing.T) {
	for _, mode := range dialerModes {
		t.Run(mode, func(t *testing.T) { testDownloadPaths(t, mode) })
	}
}

func testDownloadPaths(t *testing.T, mode string) {
	const size = 24 << 20
	target, want := sourceTarget(t, size)
	d := newDialer(t, newTunnelServer(t, HandlerConfig{AllowPrivate: true}), mode, testUser, testToken)

	t.Run("Copy", func(t *testing.T) {
		c, err := d.DialContext(context.Background(), "tcp", target)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		w := &pausingWriter{h: sha256.New()}
		var pool copybuf.Pool
		var lent int64 // the most pool buffers out at once
		n, err := copybuf.Copy(w.write, c, &pool, func(int) { lent = max(lent, pool.Lent()) })
		if err != nil || n != size {
			t.Fatalf("copied %d bytes, %v; want %d", n, err, size)
		}
		if [32]byte(w.h.Sum(nil)) != want {
			t.Fatal("the bytes differ")
		}
		// internal/h2 hands over its own chunks; net/http's HTTP/2
		// client and HTTP/3 are read through copybuf's buffers, the large
		// one from the pool for bulk.
		if wantChunks := transport(mode) == "h2" && mode != "h2std"; (lent == 0) != wantChunks {
			t.Fatalf("%d pool buffers lent at most; want none only on the chunk path (h2)", lent)
		}
	})
	t.Run("io.Copy", func(t *testing.T) { // WriteTo
		c, err := d.DialContext(context.Background(), "tcp", target)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		h := sha256.New()
		n, err := io.Copy(h, c)
		if err != nil || n != size || [32]byte(h.Sum(nil)) != want {
			t.Fatalf("copied %d bytes (want %d), %v, digest match %v", n, size, err, [32]byte(h.Sum(nil)) == want)
		}
	})
	t.Run("Read", func(t *testing.T) {
		c, err := d.DialContext(context.Background(), "tcp", target)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		h := sha256.New()
		sizes := []int{1, 100, 64 << 10, 300 << 10, 7}
		buf := make([]byte, 300<<10)
		total := 0
		for i := 0; ; i++ {
			n, err := c.Read(buf[:sizes[i%len(sizes)]])
			h.Write(buf[:n])
			total += n
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("after %d bytes: %v", total, err)
			}
			if i%9 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		if total != size || [32]byte(h.Sum(nil)) != want {
			t.Fatalf("read %d bytes (want %d), digest match %v", total, size, [32]byte(h.Sum(nil)) == want)
		}
	})
}

// Streams closed with data still queued give it back to the connection's
// window: with small windows, a leak would stall the connection long
// before the last download.
func TestH2ClosedStreamsReturnTheWindow(t *testing.T) {
	runOver(t, h2Modes, testH2ClosedStreamsReturnTheWindow)
}

func testH2ClosedStreamsReturnTheWindow(t *testing.T, mode string) {
	target, want := sourceTarget(t, 2<<20)
	ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
	cfg := ClientHTTP2Config()
	cfg.MaxReceiveBufferPerStream = 256 << 10
	cfg.MaxReceiveBufferPerConnection = 512 << 10
	d, err := NewDialer(withMode(mode, DialerConfig{
		Servers: []string{serverURL(ts.addr)},
		RootCAs: ts.cert.Pool,
		HTTP2:   cfg,
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 12 {
		c, err := d.DialContext(ctx, "tcp", target)
		if err != nil {
			t.Fatal(err)
		}
		// Take a little, let the window fill, drop the rest.
		c.SetReadDeadline(time.Now().Add(10 * time.Second)) // a leak stalls here
		if _, err := io.ReadFull(c, make([]byte, 1000)); err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		time.Sleep(20 * time.Millisecond)
		c.Close()
	}
	c, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	h := sha256.New()
	if _, err := io.Copy(h, c); err != nil {
		t.Fatalf("last download: %v", err)
	}
	if [32]byte(h.Sum(nil)) != want {
		t.Fatal("the bytes differ")
	}
}

// A deadline set while a Read or Write waits ends that call, as net.Conn
// says: SetReadDeadline(now) is how a caller cancels a Read.
func TestDeadlineEndsWaitingCalls(t *testing.T) {
	for _, mode := range dialerModes {
		t.Run(mode, func(t *testing.T) {
			held := make(chan struct{})
			defer close(held)
			target := serveTarget(t, func(c *net.TCPConn) { <-held }) // never reads, never writes
			d := newDialer(t, newTunnelServer(t, HandlerConfig{AllowPrivate: true}), mode, testUser, testToken)
			c, err := d.DialContext(context.Background(), "tcp", target)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ended := func(what string, call func() error, cancel func()) {
				t.Helper()
				done := make(chan error, 1)
				go func() { done <- call() }()
				time.Sleep(200 * time.Millisecond) // let it wait
				cancel()
				select {
				case err := <-done:
					if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
						t.Fatalf("%s: %v, want a timeout", what, err)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("%s still waits after its deadline passed", what)
				}
			}
			ended("Read", func() error {
				_, err := c.Read(make([]byte, 10))
				return err
			}, func() { c.SetReadDeadline(time.Now()) })
			// Writes block once the windows and the target's socket are full.
			ended("Write", func() error {
				buf := make([]byte, 1<<20)
				for {
					if _, err := c.Write(buf); err != nil {
						return err
					}
				}
			}, func() {
				time.Sleep(time.Second) // fill the windows first
				c.SetWriteDeadline(time.Now())
			})
		})
	}
}

// RoundTrip's request body is sent beside the response, which does not
// wait for it: a server that answers without reading a large body (and
// then resets the stream, as net/http's does) leaves the whole answer
// readable; and a body whose Read never returns does not hold up
// Dialer.Close.
func TestH2RoundTripBody(t *testing.T) {
	runOver(t, h2Modes, testH2RoundTripBody)
}

func testH2RoundTripBody(t *testing.T, mode string) {
	ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
	d, err := NewDialer(withMode(mode, DialerConfig{Servers: []string{serverURL(ts.addr)}, RootCAs: ts.cert.Pool}))
	if err != nil {
		t.Fatal(err)
	}
	page := func(body io.Reader) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "https://"+ts.addr+"/", body)
		wantWebsite(t, d, req)
	}
	page(bytes.NewReader(make([]byte, 32<<20))) // more than the windows take

	stuck, unstick := io.Pipe()
	defer unstick.Close()
	page(stuck)
	closed := make(chan error, 1)
	go func() { closed <- d.Close() }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		unstick.Close()
		<-closed
		t.Fatal("Dialer.Close waited for a request body's Read")
	}
}

// A request that fails for a reason of its own is not retried, and its
// body is not fetched again (GetBody) for a retry that does not come.
func TestRoundTripNoRetryNoGetBody(t *testing.T) {
	runOver(t, h2Modes, testRoundTripNoRetryNoGetBody)
}

func testRoundTripNoRetryNoGetBody(t *testing.T, mode string) {
	ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
	d := newDialer(t, ts, mode, testUser, testToken)
	req, _ := http.NewRequest(http.MethodPost, "https://"+ts.addr+"/", bytes.NewReader([]byte("body")))
	calls := 0
	getBody := req.GetBody
	req.GetBody = func() (io.ReadCloser, error) { calls++; return getBody() }
	req.Header["Bad Name"] = []string{"x"} // refused before it is sent
	if _, err := d.RoundTrip(req); err == nil {
		t.Fatal("a request with an invalid header name was sent")
	}
	if calls != 0 {
		t.Fatalf("GetBody called %d times for a request that is not retried", calls)
	}
}

// A server's SETTINGS_MAX_CONCURRENT_STREAMS bounds the tunnels on one
// connection: past it, the Dialer opens another connection rather than
// send a stream the server would refuse.
func TestH2ServerStreamLimit(t *testing.T) {
	for _, mode := range h2Modes {
		t.Run(mode, func(t *testing.T) {
			ts := newTunnelServerOpts(t, HandlerConfig{AllowPrivate: true}, serverOpts{configure: func(s *http.Server) {
				s.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: 2}
			}})
			d := newDialer(t, ts, mode, testUser, testToken)
			target := echoTarget(t)
			conns := map[session]int{}
			for range 5 {
				c := pingTunnel(t, d, target).(*tunnelConn)
				c.mu.Lock()
				conns[c.s]++
				c.mu.Unlock()
			}
			for s, n := range conns {
				if n > 2 {
					t.Fatalf("%d tunnels on connection %p; the server allows 2", n, s)
				}
			}
		})
	}
}
