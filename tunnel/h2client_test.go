package tunnel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
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
	for _, mode := range []string{"h2", "h3"} { // the Dialer's transports
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
		// HTTP/2 hands over its own chunks; HTTP/3 is read through
		// copybuf's buffers, the large one from the pool for bulk.
		if wantChunks := mode == "h2"; (lent == 0) != wantChunks {
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
	target, want := sourceTarget(t, 2<<20)
	ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
	cfg := ClientHTTP2Config()
	cfg.MaxReceiveBufferPerStream = 256 << 10
	cfg.MaxReceiveBufferPerConnection = 512 << 10
	d, err := NewDialer(DialerConfig{
		Servers:   []string{serverURL(ts.addr)},
		RootCAs:   ts.cert.Pool,
		Transport: "h2",
		HTTP2:     cfg,
	})
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
	for _, mode := range []string{"h2", "h3"} { // the Dialer's transports
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

// A Close while CopyChunks has lent a chunk to dst (the relay closes a
// tunnel from its other direction) gives that chunk's bytes back to the
// connection window once, not twice: more would let the server send
// more than the client can hold, and past 2^31-1 fail the connection.
func TestH2CloseDuringCopyCreditsOnce(t *testing.T) {
	target, _ := sourceTarget(t, 4<<20)
	d := newDialer(t, newTunnelServer(t, HandlerConfig{AllowPrivate: true}), "h2", testUser, testToken)
	c, err := d.DialContext(context.Background(), "tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.(*tunnelConn).stream()
	if err != nil {
		t.Fatal(err)
	}
	hc := st.(*h2ClientStream).c
	var pool copybuf.Pool
	stop := errors.New("stop")
	var got int
	n, err := copybuf.Copy(func(p []byte) error { got = len(p); c.Close(); return stop }, c, &pool, nil)
	if !errors.Is(err, stop) || n != 0 || got == 0 {
		t.Fatalf("copy: %d bytes counted, %v; dst had %d", n, err, got)
	}
	hc.mu.Lock()
	over := hc.inflow + hc.unacked - int64(hc.connWindow)
	hc.mu.Unlock()
	if over > 0 {
		t.Fatalf("%d bytes given back to the connection window twice (the chunk lent had %d)", over, got)
	}
}

// RoundTrip's request body is sent beside the response, which does not
// wait for it: a server that answers without reading a large body (and
// then resets the stream, as net/http's does) leaves the whole answer
// readable; and a body whose Read never returns does not hold up
// Dialer.Close.
func TestH2RoundTripBody(t *testing.T) {
	ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
	d, err := NewDialer(DialerConfig{Servers: []string{serverURL(ts.addr)}, RootCAs: ts.cert.Pool, Transport: "h2"})
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
	ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
	d := newDialer(t, ts, "h2", testUser, testToken)
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

// A connection opens streams up to the last ID a client may use
// (2^31-1), and the tunnel after that goes on a new connection.
func TestH2StreamIDsRunOut(t *testing.T) {
	target := echoTarget(t)
	d := newDialer(t, newTunnelServer(t, HandlerConfig{AllowPrivate: true}), "h2", testUser, testToken)
	open := func() (*h2Conn, uint32) {
		t.Helper()
		st, _ := pingTunnel(t, d, target).(*tunnelConn).stream()
		s := st.(*h2ClientStream)
		return s.c, s.id
	}
	first, _ := open()
	first.mu.Lock()
	first.nextID = h2MaxStreamID
	first.mu.Unlock()
	if c, id := open(); c != first || id != h2MaxStreamID {
		t.Fatalf("stream %d on connection %p; want %d on %p, the last ID on the first", id, c, h2MaxStreamID, first)
	}
	if c, _ := open(); c == first {
		t.Fatal("a stream was opened past the last ID")
	}
}

// A server's SETTINGS_MAX_CONCURRENT_STREAMS bounds the tunnels on one
// connection: past it, the Dialer opens another connection rather than
// send a stream the server would refuse.
func TestH2ServerStreamLimit(t *testing.T) {
	ts := newTunnelServerOpts(t, HandlerConfig{AllowPrivate: true}, serverOpts{configure: func(s *http.Server) {
		s.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: 2}
	}})
	d := newDialer(t, ts, "h2", testUser, testToken)
	target := echoTarget(t)
	conns := map[*h2Conn]int{}
	for range 5 {
		c := pingTunnel(t, d, target)
		st, _ := c.(*tunnelConn).stream()
		conns[st.(*h2ClientStream).c]++
	}
	for hc, n := range conns {
		if n > 2 {
			t.Fatalf("%d tunnels on connection %p; the server allows 2", n, hc)
		}
	}
}
