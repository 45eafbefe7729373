package server_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/porta443/porta/server"
)

// backend is a site behind --site-proxy on loopback: a page that reports
// what it was sent, a stream that waits for the test, and a WebSocket-like
// echo after an Upgrade.
func backend(t *testing.T, release <-chan struct{}) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "host=%s xff=%s proto=%s xfhost=%s path=%s",
			r.Host, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"),
			r.Header.Get("X-Forwarded-Host"), r.URL.RequestURI())
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: second\n\n")
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want an upgrade", 400)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		rw.Flush()
		line, _ := rw.ReadString('\n')
		rw.WriteString("echo " + line)
		rw.Flush()
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func TestProxySite(t *testing.T) {
	eachHTTP2(t, func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		r := start(t, server.Config{SiteProxy: backend(t, release)}, false)
		for name, c := range r.clients(t) {
			t.Run(name, func(t *testing.T) {
				req := newRequest(t, "GET", r.url("/page?x=1"))
				req.Host = "www.example.org"
				resp, body := get(t, c, req)
				want := "host=www.example.org xff=127.0.0.1 proto=https xfhost=www.example.org path=/page?x=1"
				if resp.StatusCode != 200 || string(body) != want {
					t.Fatalf("%d %q\nwant %q", resp.StatusCode, body, want)
				}
				if resp, _ := get(t, c, newRequest(t, "CONNECT", r.url("/"))); name != "h1" && resp.StatusCode != 405 {
					t.Errorf("CONNECT: %d, want 405", resp.StatusCode)
				}
			})
		}
	})
}

// TestProxySiteStreams: a streamed response reaches the visitor as it is
// written, not when it ends.
func TestProxySiteStreams(t *testing.T) {
	eachHTTP2(t, func(t *testing.T) {
		release := make(chan struct{})
		r := start(t, server.Config{SiteProxy: backend(t, release)}, false)
		released := false
		defer func() {
			if !released {
				close(release)
			}
		}()
		c := r.clients(t)["h2"]
		resp, err := c.Do(newRequest(t, "GET", r.url("/stream")))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		line, err := br.ReadString('\n')
		if err != nil || line != "data: first\n" {
			t.Fatalf("first event before the stream ends: %q, %v", line, err)
		}
		close(release)
		released = true
		rest, _ := io.ReadAll(br)
		if string(rest) != "\ndata: second\n\n" {
			t.Fatalf("rest %q", rest)
		}
	})
}

// TestProxySiteWebSocket: an HTTP/1.1 Upgrade passes through both ways.
func TestProxySiteWebSocket(t *testing.T) {
	r := start(t, server.Config{SiteProxy: backend(t, nil)}, false)
	conn, err := tls.Dial("tcp", r.addr, r.cert.ClientTLS("http/1.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	io.WriteString(conn, "hello\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "echo hello\n" {
		t.Fatalf("after upgrade: %q %v", line, err)
	}
}

func TestProxySiteBackendDown(t *testing.T) {
	eachHTTP2(t, func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := "http://" + ln.Addr().String()
		ln.Close()
		r := start(t, server.Config{SiteProxy: dead}, false)
		resp, body := get(t, r.clients(t)["h2"], newRequest(t, "GET", r.url("/")))
		if resp.StatusCode != 502 || strings.Contains(strings.ToLower(string(body)), "porta") {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	})
}
