package h2

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porta443/porta/internal/h2/h2test"
	"golang.org/x/net/http2"
)

// The hardening net/http's HTTP/2 server has, each shown on both servers
// where both have it: a client that attacks gets what net/http's server
// gives it, and everyone else goes on being served.

// eachServer runs f against this package's server and net/http's.
func eachServer(t *testing.T, h http.Handler, f func(t *testing.T, ts *testServer), opts ...serverOpt) {
	t.Run("porta", func(t *testing.T) { f(t, newServer(t, h, opts...)) })
	t.Run("net/http", func(t *testing.T) { f(t, newStdServer(t, h, opts...)) })
}

func withHTTP2(c http.HTTP2Config) serverOpt { return func(hs *http.Server) { hs.HTTP2 = &c } }

// stillServes checks that a new connection to ts gets an answer.
func stillServes(t *testing.T, ts *testServer) {
	t.Helper()
	resp, err := ts.client(t).Get(ts.url("/"))
	if err != nil {
		t.Fatalf("the server stopped serving others: %v", err)
	}
	resp.Body.Close()
}

// TestRapidReset (CVE-2023-44487): streams opened and reset at once free
// their slot in the stream limit, but their handlers may still run; no
// more handlers run than the limit allows, and a client that keeps
// queueing more is cut off with ENHANCE_YOUR_CALM.
func TestRapidReset(t *testing.T) {
	const limit = 10
	var running, peak atomic.Int32
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := running.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-release
		running.Add(-1)
	})
	eachServer(t, h, func(t *testing.T, ts *testServer) {
		peak.Store(0)
		rc := dialRaw(t, ts)
		rc.Until(5*time.Second, "SETTINGS", func(f http2.Frame) bool { s, ok := f.(*http2.SettingsFrame); return ok && !s.IsAck() })
		rc.WriteSettingsAck()
		id := uint32(1)
		for range 6 * limit {
			rc.Request(id, "GET", "/", true)
			rc.WriteRSTStream(id, http2.ErrCodeCancel)
			id += 2
		}
		if code := rc.GoAway(10 * time.Second); code != http2.ErrCodeEnhanceYourCalm {
			t.Fatalf("GOAWAY %v, want ENHANCE_YOUR_CALM", code)
		}
		if p := peak.Load(); p > limit {
			t.Fatalf("%d handlers ran at once, over the limit of %d", p, limit)
		}
		for range limit {
			release <- struct{}{}
		}
		stillServesWith(t, ts, release)
	}, withHTTP2(http.HTTP2Config{MaxConcurrentStreams: limit}))
}

// stillServesWith is stillServes for a handler that waits on release.
func stillServesWith(t *testing.T, ts *testServer, release chan struct{}) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		stillServes(t, ts)
	}()
	for {
		select {
		case release <- struct{}{}:
		case <-done:
			return
		}
	}
}

// TestContinuationFlood (CVE-2023-45288): a header block that goes on in
// CONTINUATION frames past the header-list limit closes the connection
// at once, without the server holding what it was sent.
func TestContinuationFlood(t *testing.T) {
	eachServer(t, okHandler(), func(t *testing.T, ts *testServer) {
		rc := dialRaw(t, ts)
		first := rc.Block(":method", "GET", ":scheme", "https", ":authority", "localhost", ":path", "/")
		if err := rc.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first}); err != nil {
			t.Fatal(err)
		}
		junk := rc.Block("x-junk", strings.Repeat("a", 8000))
		sent := 0
		for ; sent < 10000; sent++ { // 80 MB, far past the 96 KiB limit
			if err := rc.WriteContinuation(1, false, junk); err != nil {
				break // the server hung up
			}
		}
		if !rc.ClosedWithin(10 * time.Second) {
			t.Fatalf("the connection is still open after %d CONTINUATION frames", sent)
		}
		if sent*len(junk) > 8<<20 {
			t.Errorf("the server read %d MB of header block before hanging up", sent*len(junk)>>20)
		}
		stillServes(t, ts)
	}, func(hs *http.Server) { hs.MaxHeaderBytes = 96 << 10 })
}

// TestHPACKBomb: a small header block that expands past the header-list
// limit through the dynamic table (one large entry, referenced over and
// over) is answered 431, as an oversized one is, and the connection goes
// on.
func TestHPACKBomb(t *testing.T) {
	eachServer(t, okHandler(), func(t *testing.T, ts *testServer) {
		rc := dialRaw(t, ts)
		block := rc.Block(":method", "GET", ":scheme", "https", ":authority", "localhost", ":path", "/",
			"x-bomb", strings.Repeat("b", 3000)) // enters the table
		idx := byte(0x80 | 62) // indexed: the newest dynamic entry
		block = append(block, bytes.Repeat([]byte{idx}, 2000)...)
		if len(block) > 16384 {
			t.Fatalf("block of %d bytes", len(block))
		}
		rc.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: true, EndHeaders: true})
		if s := rc.Status(1, 10*time.Second); s != "431" { // 6 MB decoded, against 96 KiB
			t.Fatalf("status %s, want 431", s)
		}
		rc.Request(3, "GET", "/", true)
		if s := rc.Status(3, 10*time.Second); s != "200" {
			t.Fatalf("after the bomb: status %s", s)
		}
	}, func(hs *http.Server) { hs.MaxHeaderBytes = 96 << 10 })
}

// TestPingFlood: a client that sends PINGs and does not read what comes
// back is cut off once 10,000 answers wait, as net/http's is.
func TestPingFlood(t *testing.T) {
	eachServer(t, bigHandler(), func(t *testing.T, ts *testServer) {
		rc := stallWrites(t, ts)
		var err error
		for i := 0; i < 200000 && err == nil; i++ {
			err = rc.WritePing(false, [8]byte{byte(i), byte(i >> 8)})
		}
		// The flood may all have fit in the socket buffers: see that the
		// connection was cut, by reading.
		if err == nil && !rc.ClosedWithin(20*time.Second) {
			t.Fatal("the connection survived the flood")
		}
		stillServes(t, ts)
	})
}

// TestSettingsFlood: SETTINGS that arrive while the server's writes are
// held up are acknowledged together, as net/http's server does, so a
// flood of them queues nothing: the connection lives and, once the
// client reads again, is served.
func TestSettingsFlood(t *testing.T) {
	eachServer(t, bigHandler(), func(t *testing.T, ts *testServer) {
		rc := stallWrites(t, ts)
		for i := range 50000 {
			if err := rc.WriteSettings(http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: uint32(1<<20 + i)}); err != nil {
				t.Fatalf("the server stopped reading: %v", err)
			}
		}
		if ts.h2 != nil {
			if n := queuedControl(ts.h2); n > 10 {
				t.Fatalf("%d control frames queued after the flood", n)
			}
		}
		rc.WriteRSTStream(1, http2.ErrCodeCancel)
		rc.Request(3, "GET", "/small", true)
		if s := rc.Status(3, 20*time.Second); s != "200" {
			t.Fatalf("after the flood: %s", s)
		}
	})
}

// bigHandler answers 64 MiB, or "ok" at /small.
func bigHandler() http.Handler {
	big := bytes.Repeat([]byte("x"), 64<<20)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			io.WriteString(w, "ok")
			return
		}
		w.Write(big)
	})
}

// stallWrites makes the server's writes wait on a connection: a large
// response that the client does not read, with room in every window.
func stallWrites(t *testing.T, ts *testServer) *h2test.Client {
	rc := dialRaw(t, ts, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
	rc.WriteWindowUpdate(0, 1<<31-1-65535)
	rc.Request(1, "GET", "/", true)
	time.Sleep(200 * time.Millisecond) // for the socket buffers to fill
	return rc
}

// queuedControl is how many control frames wait on s's connections.
func queuedControl(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		c.w.qmu.Lock()
		n += len(c.w.queue)
		c.w.qmu.Unlock()
	}
	return n
}

// TestWindowUpdateFlood: WINDOW_UPDATEs that ask for nothing cost the
// server nothing it keeps, and one that takes a window past 2^31-1 ends
// the connection with FLOW_CONTROL_ERROR.
func TestWindowUpdateFlood(t *testing.T) {
	eachServer(t, okHandler(), func(t *testing.T, ts *testServer) {
		rc := dialRaw(t, ts)
		for range 100000 {
			if err := rc.WriteWindowUpdate(0, 1); err != nil {
				t.Fatal(err)
			}
		}
		rc.Request(1, "GET", "/", true)
		if s := rc.Status(1, 10*time.Second); s != "200" {
			t.Fatalf("status %s during the flood", s)
		}
		rc.WriteWindowUpdate(0, 1<<31-1)
		if code := rc.GoAway(10 * time.Second); code != http2.ErrCodeFlowControl {
			t.Fatalf("GOAWAY %v, want FLOW_CONTROL_ERROR", code)
		}
		stillServes(t, ts)
	})
}

// TestStreamLimit: a stream past MAX_CONCURRENT_STREAMS is refused
// (REFUSED_STREAM while our SETTINGS are not acked, PROTOCOL_ERROR once
// they are), and the open ones are not disturbed.
func TestStreamLimit(t *testing.T) {
	const limit = 5
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "done")
	})
	eachServer(t, h, func(t *testing.T, ts *testServer) {
		rc := dialRaw(t, ts)
		for i := range limit + 1 {
			rc.Request(uint32(1+2*i), "GET", "/", true)
		}
		if code := rc.Reset(1+2*limit, 10*time.Second); code != http2.ErrCodeRefusedStream {
			t.Fatalf("the stream past the limit, before SETTINGS ack: %v, want REFUSED_STREAM", code)
		}
		rc.WriteSettingsAck()
		rc.Request(3+2*limit, "GET", "/", true)
		if code := rc.Reset(3+2*limit, 10*time.Second); code != http2.ErrCodeProtocol {
			t.Fatalf("the stream past the limit, after SETTINGS ack: %v, want PROTOCOL_ERROR", code)
		}
		for range limit {
			release <- struct{}{}
		}
		answered := map[uint32]string{}
		for len(answered) < limit {
			f := rc.Until(10*time.Second, "responses", func(f http2.Frame) bool { _, ok := f.(*http2.MetaHeadersFrame); return ok })
			mh := f.(*http2.MetaHeadersFrame)
			answered[mh.StreamID] = mh.PseudoValue("status")
		}
		for i := range limit {
			if s := answered[uint32(1+2*i)]; s != "200" {
				t.Fatalf("stream %d: %q", 1+2*i, s)
			}
		}
	}, withHTTP2(http.HTTP2Config{MaxConcurrentStreams: limit}))
}

// TestHeaderListLimit: a header list over MaxHeaderBytes is answered 431
// when its block is up to twice the limit; a block larger still ends the
// connection (PROTOCOL_ERROR) unread, as net/http's bundled Framer does.
// (x/net's Framer, which the server reads frames with, would decode blocks
// up to four times the limit: the server decodes its header blocks
// itself, to answer these the same.)
func TestHeaderListLimit(t *testing.T) {
	eachServer(t, okHandler(), func(t *testing.T, ts *testServer) {
		for _, n := range []int{10, 20, 40} { // 40, 80 and 160 KB of fields, limit 32 KiB
			rc := dialRaw(t, ts)
			var extra []string
			for j := range n {
				extra = append(extra, "x-big-"+strconv.Itoa(j), strings.Repeat("v", 4000))
			}
			rc.Request(1, "GET", "/", true, extra...)
			if n == 10 {
				if s := rc.Status(1, 10*time.Second); s != "431" {
					t.Fatalf("%d fields: status %s, want 431", n, s)
				}
				continue
			}
			if code := rc.GoAway(10 * time.Second); code != http2.ErrCodeProtocol {
				t.Fatalf("%d fields: GOAWAY %v, want PROTOCOL_ERROR", n, code)
			}
		}
		stillServes(t, ts)
	}, func(hs *http.Server) { hs.MaxHeaderBytes = 32 << 10 })
}

// TestSlowClients: a connection without the client preface, or without
// its SETTINGS after it, is closed (after 10 s and 2 s, as net/http's;
// shortened here).
func TestSlowClients(t *testing.T) {
	srv := &Server{prefaceTimeout: 300 * time.Millisecond, settingsTimeout: 300 * time.Millisecond}
	ts := startServer(t, okHandler(), srv)
	t.Run("no preface", func(t *testing.T) {
		rc := dialRaw(t, ts)
		rc.Close()
		tc := dialTLS(t, ts)
		start := time.Now()
		if _, err := io.ReadAll(tc); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("closed after %v", d)
		}
	})
	t.Run("no settings", func(t *testing.T) {
		tc := dialTLS(t, ts)
		io.WriteString(tc, clientPreface)
		start := time.Now()
		io.ReadAll(tc)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("closed after %v", d)
		}
	})
	stillServes(t, ts)
}

// TestIdleTimeout: a connection with no stream for IdleTimeout gets
// GOAWAY(NO_ERROR) and is closed; one with a stream open is not.
func TestIdleTimeout(t *testing.T) {
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			<-release
		}
	})
	eachServer(t, h, func(t *testing.T, ts *testServer) {
		idle := dialRaw(t, ts)
		busy := dialRaw(t, ts)
		busy.Request(1, "GET", "/wait", true)
		if code := idle.GoAway(10 * time.Second); code != http2.ErrCodeNo {
			t.Fatalf("GOAWAY %v, want NO_ERROR", code)
		}
		if !idle.ClosedWithin(10 * time.Second) {
			t.Fatal("the idle connection stays open")
		}
		release <- struct{}{}
		if s := busy.Status(1, 10*time.Second); s != "200" {
			t.Fatalf("the busy connection: %s", s)
		}
	}, func(hs *http.Server) { hs.IdleTimeout = 300 * time.Millisecond })
}

// TestPingHealthCheck: with SendPingTimeout the server PINGs a silent
// client and closes the connection when no answer comes.
func TestPingHealthCheck(t *testing.T) {
	eachServer(t, okHandler(), func(t *testing.T, ts *testServer) {
		rc := dialRaw(t, ts)
		rc.Until(10*time.Second, "PING", func(f http2.Frame) bool { p, ok := f.(*http2.PingFrame); return ok && !p.IsAck() })
		if !rc.ClosedWithin(10 * time.Second) {
			t.Fatal("the connection stays open without an answer to PING")
		}
		answering := dialRaw(t, ts)
		deadline := time.Now().Add(1500 * time.Millisecond)
		for time.Now().Before(deadline) {
			f, err := answering.Next(time.Until(deadline))
			if err != nil {
				if closed := !strings.Contains(err.Error(), "timeout"); closed {
					t.Fatalf("a client that answers PINGs was cut off: %v", err)
				}
				break
			}
			if p, ok := f.(*http2.PingFrame); ok && !p.IsAck() {
				answering.WritePing(true, p.Data)
			}
		}
	}, withHTTP2(http.HTTP2Config{SendPingTimeout: 200 * time.Millisecond, PingTimeout: 200 * time.Millisecond}))
}

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
}
