// Package relaytest holds what the local proxies' tests share: loopback
// listeners and targets, a dialer that records what it was asked for, a
// file server, and curl.
package relaytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porta443/porta/internal/testenv"
)

// Listen returns a listener on 127.0.0.1, closed at cleanup.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// ServeTCP runs handle for each connection to a new loopback listener,
// closes the connection when handle returns, and closes and joins
// everything at cleanup. It returns the listener's address.
func ServeTCP(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln := Listen(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					c.Close()
				}()
				handle(c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// EchoTarget echoes each connection until EOF, then closes it.
func EchoTarget(t testing.TB) string {
	return ServeTCP(t, func(c net.Conn) { io.Copy(c, c) })
}

// SourceTarget sends body on each connection, then closes it.
func SourceTarget(t testing.TB, body []byte) string {
	return ServeTCP(t, func(c net.Conn) { c.Write(body) })
}

// AnswerTarget reads want bytes from each connection, answers with
// answer and closes it: the exact byte counts a metrics test checks.
func AnswerTarget(t testing.TB, want int, answer []byte) string {
	return ServeTCP(t, func(c net.Conn) {
		if _, err := io.CopyN(io.Discard, c, int64(want)); err == nil {
			c.Write(answer)
		}
	})
}

// DialDirect dials address with a net.Dialer.
func DialDirect(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, address)
}

// RecordingDial dials Target whatever address it is asked for, and
// records the addresses: a host name must reach it unresolved.
type RecordingDial struct {
	Target string
	mu     sync.Mutex
	asked  []string
}

// Dial records address and dials r.Target.
func (r *RecordingDial) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	r.mu.Lock()
	r.asked = append(r.asked, address)
	r.mu.Unlock()
	return DialDirect(ctx, network, r.Target)
}

// Count is how many dials were asked for.
func (r *RecordingDial) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.asked)
}

// Last is the last address asked for, or "".
func (r *RecordingDial) Last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.asked) == 0 {
		return ""
	}
	return r.asked[len(r.asked)-1]
}

// Payload is n random bytes and their SHA-256.
func Payload(t testing.TB, n int) ([]byte, [32]byte) {
	b := make([]byte, n)
	rand.Read(b)
	return b, sha256.Sum256(b)
}

// FileServer serves a random file of size bytes at /file (and echoes a
// POST body's SHA-256 in hex at /sum) on loopback, and returns its
// address and the file's digest.
func FileServer(t testing.TB, size int) (addr string, sum [32]byte) {
	t.Helper()
	body, sum := Payload(t, size)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/file":
			http.ServeContent(w, r, "file", time.Time{}, bytes.NewReader(body))
		case "/sum":
			h := sha256.New()
			io.Copy(h, r.Body)
			fmt.Fprintf(w, "%x", h.Sum(nil))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String(), sum
}

// Curl runs curl with args (after -sS --fail), with no proxy settings
// from the environment, and returns the SHA-256 of its output and the
// output's first 4 KiB.
func Curl(t testing.TB, args ...string) (sum [32]byte, head []byte, err error) {
	t.Helper()
	curl := testenv.LookPath(t, "curl", "curl")
	h := sha256.New()
	var first limitedBuffer
	var stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, curl, append([]string{"-sS", "--fail"}, args...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	cmd.Stdout = io.MultiWriter(h, &first)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return sum, first.Bytes(), fmt.Errorf("curl %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return [32]byte(h.Sum(nil)), first.Bytes(), nil
}

type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := 4096 - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// ReadAll reads c until the far side closes it, and fails the test if a
// deadline ends the read instead.
func ReadAll(t testing.TB, c net.Conn) []byte {
	t.Helper()
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection was not closed; got %q", b)
	}
	return b
}

// Server is a proxy server with the lifecycle both local proxies have.
type Server interface {
	Serve(ctx context.Context, ln net.Listener) error
	Close() error
}

// Serve serves s on 127.0.0.1 and returns its address. Cleanup closes s
// and checks that Serve returned http.ErrServerClosed.
func Serve(t testing.TB, s Server) string {
	t.Helper()
	ln := Listen(t)
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// Start makes a server with newServer(cfg), failing the test on an error,
// and serves it as Serve does.
func Start[C any, S Server](t testing.TB, newServer func(C) (S, error), cfg C) string {
	t.Helper()
	s, err := newServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return Serve(t, s)
}

// Dial connects to addr with a deadline for the whole test.
func Dial(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c.(*net.TCPConn)
}

// PendingConn is a fast-open connection for the proxies' tests: Dial
// returned it at once, and the target's answer, given with Answer, comes
// later, from Established or from the first Read. Writes are discarded.
type PendingConn struct {
	net.Conn // the client's end of a pipe, for Write and Close
	answer   chan error
}

// NewPendingConn makes a PendingConn, closed at cleanup.
func NewPendingConn(t testing.TB) *PendingConn {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	go io.Copy(io.Discard, b)
	return &PendingConn{Conn: a, answer: make(chan error, 1)}
}

// Answer gives the target's answer: nil for connected, or why not.
func (p *PendingConn) Answer(err error) { p.answer <- err }

func (p *PendingConn) Established(ctx context.Context) error {
	select {
	case err := <-p.answer:
		p.answer <- err
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *PendingConn) Read(b []byte) (int, error) {
	if err := p.Established(context.Background()); err != nil {
		return 0, &net.OpError{Op: "read", Net: "tcp", Err: err}
	}
	return p.Conn.Read(b)
}

// ExpectSum reads r to its end and fails the test unless what it read has
// the SHA-256 sum; what names the transfer in the failure.
func ExpectSum(t testing.TB, r io.Reader, sum [32]byte, what string) {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if [32]byte(h.Sum(nil)) != sum {
		t.Fatalf("%s corrupted", what)
	}
}

// Script is a reader that reads as its entries say: a negative entry
// fills the caller's buffer, a positive one returns that many bytes (at
// most the buffer's length, whatever it held); then EOF. Copy loops are
// tested with it for the buffer sizes they read with.
type Script []int

func (s *Script) Read(p []byte) (int, error) {
	if len(*s) == 0 {
		return 0, io.EOF
	}
	n := (*s)[0]
	*s = (*s)[1:]
	if n < 0 || n > len(p) {
		n = len(p)
	}
	return n, nil
}
