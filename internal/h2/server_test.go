package h2

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"golang.org/x/net/http2"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/porta443/porta/internal/testenv"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The stock net/http server the parity tests compare with offers
	// extended CONNECT when a Server here has EnableConnectProtocol.
	testenv.RunWithGODEBUG("http2xconnect=1")
	goleak.VerifyTestMain(m)
}

// testServer is an http.Server on 127.0.0.1 whose HTTP/2 is this
// package's Server (or net/http's own, for comparisons).
type testServer struct {
	addr string
	cert *testenv.Cert
	hs   *http.Server
	h2   *Server // nil: net/http's HTTP/2
}

type serverOpt func(*http.Server)

// newServer serves h over TLS with this package's HTTP/2, with extended
// CONNECT on as porta's server has it.
func newServer(t testing.TB, h http.Handler, opts ...serverOpt) *testServer {
	return startServer(t, h, &Server{EnableConnectProtocol: true}, opts...)
}

// newStdServer serves h with net/http's own HTTP/2.
func newStdServer(t testing.TB, h http.Handler, opts ...serverOpt) *testServer {
	return startServer(t, h, nil, opts...)
}

func startServer(t testing.TB, h http.Handler, h2s *Server, opts ...serverOpt) *testServer {
	t.Helper()
	cert := testenv.NewCert(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	hs := &http.Server{
		Handler:   h,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert.TLS}},
		Protocols: &protos,
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	for _, o := range opts {
		o(hs)
	}
	if h2s != nil {
		if err := h2s.ConfigureServer(hs); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.ServeTLS(ln, "", "")
	}()
	t.Cleanup(func() {
		hs.Close()
		<-done
		if h2s == nil {
			// net/http's connections end a moment after Close.
			waitNoGoroutine(t, "net/http.(*http2serverConn).serve")
		}
	})
	return &testServer{addr: ln.Addr().String(), cert: cert, hs: hs, h2: h2s}
}

// waitNoGoroutine waits until no goroutine runs fn.
func waitNoGoroutine(t testing.TB, fn string) {
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 1<<20)
	for time.Now().Before(deadline) {
		n := runtime.Stack(buf, true)
		if !bytes.Contains(buf[:n], []byte(fn)) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("goroutines running %s remain", fn)
}

func (ts *testServer) url(path string) string { return "https://" + ts.addr + path }

// client is an HTTP/2-only net/http client for ts.
func (ts *testServer) client(t testing.TB) *http.Client {
	var protos http.Protocols
	protos.SetHTTP2(true)
	tr := &http.Transport{TLSClientConfig: ts.cert.ClientTLS("h2"), Protocols: &protos}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func TestServesRequests(t *testing.T) {
	ts := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			t.Errorf("proto %s", r.Proto)
		}
		switch r.URL.Path {
		case "/echo":
			io.Copy(w, r.Body)
		default:
			io.WriteString(w, "hello "+r.URL.Path)
		}
	}))
	c := ts.client(t)
	resp, err := c.Get(ts.url("/x"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hello /x" || resp.ProtoMajor != 2 {
		t.Fatalf("got %q over %s", b, resp.Proto)
	}
	data := make([]byte, 5<<20)
	rand.Read(data)
	resp, err = c.Post(ts.url("/echo"), "application/octet-stream", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	b, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || sha256.Sum256(b) != sha256.Sum256(data) {
		t.Fatalf("echo: %d bytes, %v", len(b), err)
	}
}

// TestHalfClose: the handler ends its response with CloseWrite and goes on
// reading the request body, which the client keeps sending.
func TestHalfClose(t *testing.T) {
	got := make(chan []byte, 1)
	ts := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "banner")
		if err := w.(CloseWriter).CloseWrite(); err != nil {
			t.Errorf("CloseWrite: %v", err)
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("reading after CloseWrite: %v", err)
		}
		got <- b
	}))
	pr, pw := io.Pipe()
	req, _ := http.NewRequestWithContext(context.Background(), "POST", ts.url("/"), pr)
	resp, err := ts.client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "banner" {
		t.Fatalf("response %q, %v", b, err)
	}
	data := make([]byte, 3<<20)
	rand.Read(data)
	var wg sync.WaitGroup
	wg.Go(func() {
		pw.Write(data)
		pw.Close()
	})
	select {
	case b := <-got:
		if sha256.Sum256(b) != sha256.Sum256(data) {
			t.Fatalf("handler got %d bytes after CloseWrite, want %d", len(b), len(data))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the upload after the response's end never arrived")
	}
	wg.Wait()
}

// TestReset: a handler's Reset ends the stream with its code; the
// handler's blocked body read returns, and the client sees RST_STREAM.
func TestReset(t *testing.T) {
	readErr := make(chan error, 1)
	ts := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		go func() {
			time.Sleep(50 * time.Millisecond)
			w.(Resetter).Reset(http2.ErrCodeConnect)
		}()
		_, err := io.ReadAll(r.Body)
		readErr <- err
	}))
	rc := dialRaw(t, ts)
	rc.Request(1, "POST", "/", false)
	if code := rc.Reset(1, 10*time.Second); code != http2.ErrCodeConnect {
		t.Fatalf("RST_STREAM %v, want CONNECT_ERROR", code)
	}
	if err := <-readErr; err == nil {
		t.Fatal("the body read ended without an error")
	}
	rc.Request(3, "GET", "/", true) // the connection goes on
	if s := rc.Status(3, 10*time.Second); s != "200" {
		t.Fatalf("next stream: %s", s)
	}
}

// TestDeadlines: a read deadline ends a body read that waits; a write
// deadline resets a response that waits for window.
func TestDeadlines(t *testing.T) {
	readErr := make(chan error, 1)
	ts := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if r.URL.Path == "/read" {
			rc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			_, err := r.Body.Read(make([]byte, 1))
			readErr <- err
			return
		}
		rc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		w.Write(make([]byte, 1<<20)) // the client's window is 64 KiB
	}))
	rc := dialRaw(t, ts)
	rc.Request(1, "POST", "/read", false)
	select {
	case err := <-readErr:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read: %v, want os.ErrDeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the read deadline did not end the read")
	}
	rc.Request(3, "GET", "/write", true)
	if code := rc.Reset(3, 10*time.Second); code != http2.ErrCodeInternal {
		t.Fatalf("RST_STREAM %v, want INTERNAL_ERROR", code)
	}
}

// TestGracefulShutdown: http.Server.Shutdown sends GOAWAY; the stream in
// flight completes, a stream opened after it is not served, and Shutdown
// returns once the connection is closed.
func TestGracefulShutdown(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	ts := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		io.WriteString(w, "done")
	}))
	ts.h2.goAwayTimeout = 10 * time.Millisecond
	rc := dialRaw(t, ts)
	rc.Request(1, "GET", "/slow", true)
	<-started
	shut := make(chan error, 1)
	go func() { shut <- ts.hs.Shutdown(context.Background()) }()
	if code := rc.GoAway(10 * time.Second); code != http2.ErrCodeNo {
		t.Fatalf("GOAWAY %v", code)
	}
	rc.Request(3, "GET", "/", true) // after the GOAWAY's last stream: dropped
	close(release)
	if s := rc.Status(1, 10*time.Second); s != "200" {
		t.Fatalf("the stream in flight: %s", s)
	}
	if !rc.ClosedWithin(10 * time.Second) {
		t.Fatal("the connection stays open after its last stream")
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return")
	}
}

// TestClientGoAway: after the client's GOAWAY the server finishes what is
// open and closes the connection.
func TestClientGoAway(t *testing.T) {
	release := make(chan struct{})
	ts := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "done")
	}))
	ts.h2.goAwayTimeout = 10 * time.Millisecond
	rc := dialRaw(t, ts)
	rc.Request(1, "GET", "/", true)
	rc.WriteGoAway(0, http2.ErrCodeNo, nil)
	close(release)
	if s := rc.Status(1, 10*time.Second); s != "200" {
		t.Fatalf("the open stream: %s", s)
	}
	if !rc.ClosedWithin(10 * time.Second) {
		t.Fatal("the connection stays open")
	}
}

// TestTune: a handler that tunes its stream and connection makes the
// server send what it grows (WINDOW_UPDATE on the stream and on the
// connection, SETTINGS with the new stream limit) and start PINGs; other
// streams and connections see none of it.
func TestTune(t *testing.T) {
	ts := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/tune" {
			w.(Tuner).Tune(Tuning{StreamWindow: 4 << 20, ConnWindow: 16 << 20, MaxStreams: 1000, SendPingTimeout: 100 * time.Millisecond, PingTimeout: time.Second})
			w.(Tuner).Tune(Tuning{StreamWindow: 2 << 20, ConnWindow: 2 << 20, MaxStreams: 10}) // never smaller
		}
		io.WriteString(w, "ok")
		w.(http.Flusher).Flush()
		io.Copy(io.Discard, r.Body)
	}))
	rc := dialRaw(t, ts)
	rc.Request(1, "POST", "/", false)
	rc.Status(1, 10*time.Second)
	rc.Request(3, "POST", "/tune", false)
	var streamGrow, connGrow uint32
	var maxStreams uint32
	for streamGrow == 0 || connGrow == 0 || maxStreams == 0 {
		switch f := rc.Until(10*time.Second, "the tuning", func(http2.Frame) bool { return true }).(type) {
		case *http2.WindowUpdateFrame:
			switch f.StreamID {
			case 0:
				connGrow += f.Increment
			case 1:
				t.Fatalf("the untuned stream got WINDOW_UPDATE +%d", f.Increment)
			case 3:
				streamGrow += f.Increment
			}
		case *http2.SettingsFrame:
			if v, ok := f.Value(http2.SettingMaxConcurrentStreams); ok && !f.IsAck() && v != 250 {
				maxStreams = v
			}
		case *http2.PingFrame:
			t.Fatal("a PING before the tuning's")
		}
	}
	if streamGrow != 4<<20-1<<20 || connGrow != 16<<20-1<<20 || maxStreams != 1000 {
		t.Fatalf("grew the stream by %d, the connection by %d, streams to %d", streamGrow, connGrow, maxStreams)
	}
	rc.Until(10*time.Second, "a PING", func(f http2.Frame) bool { p, ok := f.(*http2.PingFrame); return ok && !p.IsAck() })
	other := dialRaw(t, ts)
	other.Request(1, "GET", "/", true)
	other.Status(1, 10*time.Second)
	if f, err := other.Next(500 * time.Millisecond); err == nil {
		if _, ok := f.(*http2.DataFrame); !ok {
			t.Fatalf("another connection got %v", f)
		}
	}
}
