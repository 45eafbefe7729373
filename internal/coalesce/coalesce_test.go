package coalesce

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/porta443/porta/internal/selfsigned"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair returns a Conn accepted through a Listener on loopback and the
// plain client end of it.
func pair(t *testing.T) (*Conn, *net.TCPConn) {
	t.Helper()
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := NewListener(tl)
	t.Cleanup(func() { ln.Close() })
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*Conn), client.(*net.TCPConn)
}

func readAll(t *testing.T, c net.Conn) <-chan []byte {
	out := make(chan []byte, 1)
	go func() {
		b, err := io.ReadAll(c)
		if err != nil {
			t.Errorf("reading: %v", err)
		}
		out <- b
	}()
	return out
}

// Small and large writes, queued and direct, arrive whole and in order,
// and Close sends what is still pending before the FIN.
func TestWritesKeepOrder(t *testing.T) {
	c, client := pair(t)
	got := readAll(t, client)
	var want bytes.Buffer
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		n := 1 + rng.IntN(300)
		if i%10 == 0 {
			n = DirectSize + rng.IntN(3*DirectSize)
		}
		p := make([]byte, n)
		for j := range p {
			p[j] = byte(i + j)
		}
		want.Write(p)
		if k, err := c.Write(p); err != nil || k != n {
			t.Fatalf("write %d: %d, %v", i, k, err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, want.Bytes()) {
		t.Fatalf("read %d bytes, not the %d written in order", len(b), want.Len())
	}
}

// countConn counts the writes that reach the socket.
type countConn struct {
	net.Conn
	mu     sync.Mutex
	writes int
}

func (c *countConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// Small writes made while the socket is busy leave in one write.
func TestWritesWhileBusyLeaveTogether(t *testing.T) {
	inner, client := pair(t)
	cc := &countConn{Conn: inner.Conn}
	c := &Conn{Conn: cc, bufs: inner.bufs}
	got := readAll(t, client)

	c.wmu.Lock() // as if a write were in progress
	for range 100 {
		if _, err := c.Write([]byte("0123456789")); err != nil {
			t.Fatal(err)
		}
	}
	c.wmu.Unlock()
	c.Close()
	if b := <-got; len(b) != 1000 {
		t.Fatalf("read %d bytes, want 1000", len(b))
	}
	if cc.writes != 1 {
		t.Fatalf("100 queued writes reached the socket in %d writes, want 1", cc.writes)
	}
}

// A peer that does not read makes writes fail at the write deadline, the
// error sticks, and Close does not hang.
func TestStuckPeer(t *testing.T) {
	c, _ := pair(t)
	c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	p := make([]byte, 64<<10)
	var err error
	for i := 0; i < 10000 && err == nil; i++ {
		_, err = c.Write(p[:1+i%(2*DirectSize)])
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write to a peer that never reads: %v, want a deadline error", err)
	}
	c.SetWriteDeadline(time.Time{})
	if _, err := c.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("next write: %v, want the same error again", err)
	}
	done := make(chan struct{})
	go func() { c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * closeFlush):
		t.Fatal("Close hangs on a peer that does not read")
	}
}

// Close gives up on what is pending for a peer that does not read after
// closeFlush.
func TestCloseBounded(t *testing.T) {
	defer func(d time.Duration) { closeFlush = d }(closeFlush)
	closeFlush = 200 * time.Millisecond
	c, _ := pair(t)
	p := make([]byte, 256<<10)
	// Fill the socket buffers from another goroutine until a write blocks.
	blocked := make(chan error, 1)
	go func() {
		for {
			if _, err := c.Write(p); err != nil {
				blocked <- err
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	c.Close()
	if err := <-blocked; err == nil {
		t.Fatal("blocked write returned no error")
	}
}

// After SetLinger(0), Close resets the connection and drops what is
// pending.
func TestLingerZeroResets(t *testing.T) {
	c, client := pair(t)
	if _, err := c.Write([]byte("dropped")); err != nil {
		t.Fatal(err)
	}
	c.wmu.Lock() // keep the queued write from leaving
	if err := c.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	c.wmu.Unlock()
	c.Close()
	b, err := io.ReadAll(client)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("peer read %q, %v; want a reset", b, err)
	}
}

// CloseWrite sends what is pending, then the FIN; reading goes on.
func TestCloseWrite(t *testing.T) {
	c, client := pair(t)
	c.Write([]byte("request done"))
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(client)
	if err != nil || string(b) != "request done" {
		t.Fatalf("peer read %q, %v", b, err)
	}
	client.Write([]byte("reply"))
	client.CloseWrite()
	b, err = io.ReadAll(c)
	if err != nil || string(b) != "reply" {
		t.Fatalf("read %q, %v after CloseWrite", b, err)
	}
}

// Writes after Close fail with net.ErrClosed.
func TestWriteAfterClose(t *testing.T) {
	c, _ := pair(t)
	c.Close()
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

// What a TLS server writes just before Close reaches the client, though
// crypto/tls sets the write deadline to now after its close_notify.
func TestTLSCloseSendsPending(t *testing.T) {
	c, client := pair(t)
	cert := testCert(t)
	srv := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
	cl := tls.Client(client, &tls.Config{InsecureSkipVerify: true})
	got := readAll(t, cl)
	if err := srv.Handshake(); err != nil {
		t.Fatal(err)
	}
	srv.Write([]byte("last words"))
	srv.Close()
	if b := <-got; string(b) != "last words" {
		t.Fatalf("client read %q", b)
	}
}

func testCert(t *testing.T) tls.Certificate {
	t.Helper()
	certPEM, keyPEM, err := selfsigned.Generate("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := selfsigned.Pair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// A write deadline set in the past fails later writes but lets the queued
// ones go out.
func TestPastDeadlineKeepsQueued(t *testing.T) {
	c, client := pair(t)
	got := readAll(t, client)
	c.wmu.Lock() // keep the write queued until the deadline is set
	c.Write([]byte("queued"))
	c.SetWriteDeadline(time.Now())
	c.wmu.Unlock()
	if _, err := c.Write([]byte("late")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write after a past deadline: %v", err)
	}
	c.Flush()
	client.CloseWrite()
	c.Conn.Close()
	if b := <-got; string(b) != "queued" {
		t.Fatalf("peer read %q", b)
	}
}
