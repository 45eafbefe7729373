package httpproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"os"
	"syscall"
	"testing"
)

// TestForwardHeaders: hop-by-hop and Proxy-* headers stay behind, the rest
// and the query go through verbatim, and the client's connection is kept
// alive between requests.
func TestForwardHeaders(t *testing.T) {
	seen := make(chan *http.Request, 2)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "origin")
		w.Header().Set("X-End", "origin")
		io.WriteString(w, "hello")
	}))
	t.Cleanup(origin.Close)
	_, port, _ := net.SplitHostPort(origin.Listener.Addr().String())
	rec := &recordingDial{Target: origin.Listener.Addr().String()}
	proxy := startServer(t, Config{Dial: rec.Dial})

	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: proxy})}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	var reused []bool
	for range 2 {
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) }}
		ctx := httptrace.WithClientTrace(context.Background(), trace)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://origin.test:"+port+"/p?a=1;b=2&c=%zz", nil)
		req.Header.Set("Proxy-Authorization", "Basic c2VjcmV0")
		req.Header.Set("Proxy-Connection", "keep-alive")
		req.Header.Set("Proxy-Whatever", "x")
		req.Header.Set("Connection", "X-Hop")
		req.Header.Set("X-Hop", "client")
		req.Header.Set("X-End", "client")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "hello" || resp.StatusCode != 200 {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		if resp.Header.Get("X-Hop") != "" || resp.Header.Get("Keep-Alive") != "" || resp.Header.Get("X-End") != "origin" {
			t.Fatalf("response header %v", resp.Header)
		}
		r := <-seen
		for _, h := range []string{"Proxy-Authorization", "Proxy-Connection", "Proxy-Whatever", "X-Hop"} {
			if v := r.Header.Get(h); v != "" {
				t.Errorf("origin got %s: %s", h, v)
			}
		}
		if r.Header.Get("X-End") != "client" || r.Host != "origin.test:"+port || r.URL.RawQuery != "a=1;b=2&c=%zz" {
			t.Fatalf("origin got Host %q, query %q, header %v", r.Host, r.URL.RawQuery, r.Header)
		}
	}
	if len(reused) != 2 || !reused[1] {
		t.Fatalf("client connection reused: %v", reused)
	}
	if rec.Last() != "origin.test:"+port {
		t.Fatalf("Dial got %q", rec.Last())
	}
}

// TestForwardErrors: a target that cannot be reached is a 502 (or 504, or
// 403) with a short reason; bad absolute-form requests are 400 and are not
// dialed.
func TestForwardErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		status int
	}{
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, 502},
		{"no such host", &net.DNSError{Err: "no such host", Name: "x.test", IsNotFound: true}, 502},
		{"timeout", context.DeadlineExceeded, 504},
		{"not allowed", os.ErrPermission, 403},
		{"other", errors.New("tunnel: server refused: 502"), 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := startServer(t, Config{Dial: func(context.Context, string, string) (net.Conn, error) { return nil, tc.err }})
			c := dialProxy(t, proxy)
			io.WriteString(c, "GET http://x.test/ HTTP/1.1\r\nHost: x.test\r\n\r\n")
			resp, body := readResponse(t, c)
			if resp.StatusCode != tc.status || len(body) == 0 || len(body) > 100 {
				t.Fatalf("%d %q", resp.StatusCode, body)
			}
		})
	}
	rec := &recordingDial{Target: "127.0.0.1:1"}
	proxy := startServer(t, Config{Dial: rec.Dial})
	for _, line := range []string{
		"GET ftp://x.test/ HTTP/1.1",
		"GET http://x.test:0/ HTTP/1.1",
		"GET http://x%20y.test/ HTTP/1.1",
		"GET http://user:pw@x.test/ HTTP/1.1",
		"GET http://[fe80::1%25eth0]:80/ HTTP/1.1",
	} {
		t.Run(line, func(t *testing.T) {
			c := dialProxy(t, proxy)
			io.WriteString(c, line+"\r\nHost: x.test\r\n\r\n")
			if resp, body := readResponse(t, c); resp.StatusCode != 400 {
				t.Fatalf("%d %q", resp.StatusCode, body)
			}
		})
	}
	if rec.Count() != 0 {
		t.Fatalf("dialed %q", rec.Last())
	}
}
