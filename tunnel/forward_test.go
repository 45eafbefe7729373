package tunnel

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestForwardPlainHTTP: an authenticated plain-http request is forwarded
// to its origin — absolute-form on HTTP/1.1, the origin in :authority on
// HTTP/2 and HTTP/3 (as browsers send it to an HTTPS proxy) — and a
// prohibited origin is refused with a reason.
func TestForwardPlainHTTP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	origin := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "origin says "+r.Method+" "+r.URL.Path+" auth="+r.Header.Get("Proxy-Authorization"))
	})}
	served := make(chan struct{})
	go func() { defer close(served); origin.Serve(ln) }()
	t.Cleanup(func() { origin.Close(); <-served })
	target := ln.Addr().String()

	run(t, func(t *testing.T, mode string) {
		ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
		closed := newTunnelServer(t, HandlerConfig{})
		get := func(ts *testServer, auth string) (int, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if mode == "h1" {
				raw := rawH1(t, ts, "GET http://"+target+"/page HTTP/1.1\r\nHost: "+target+
					"\r\nProxy-Authorization: "+auth+"\r\nConnection: close\r\n\r\n")
				resp, err := http.ReadResponse(bufioReader(raw), nil)
				if err != nil {
					t.Fatalf("%v in %q", err, raw)
				}
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, resp.Header.Get("Proxy-Status") + string(b)
			}
			p := probeReq{method: "GET", host: target, path: "/page", auth: []string{auth}}
			r := observe(roundTripper(t, ts, mode)(p.request(ctx, ts.addr)))
			if r.Err != "" {
				t.Fatal(r.Err)
			}
			return r.Status, r.Header + r.Body
		}
		status, body := get(ts, basicAuth(testUser, testToken))
		if status != 200 || !strings.HasSuffix(body, "origin says GET /page auth=") {
			t.Fatalf("forwarded: %d %q (and Proxy-Authorization must not reach the origin)", status, body)
		}
		if st := ts.h.cfg.Users.Stats()[0]; st.Total != 1 || st.BytesDown == 0 {
			t.Fatalf("stats %+v", st)
		}
		status, body = get(closed, basicAuth(testUser, testToken))
		if status != 403 || !strings.Contains(body, "error=destination_ip_prohibited") {
			t.Fatalf("prohibited origin: %d %q", status, body)
		}
		status, body = get(ts, basicAuth(testUser, "wrong"))
		if strings.Contains(body, "origin says") {
			t.Fatalf("forwarded without valid credentials: %d %q", status, body)
		}
	})
}
