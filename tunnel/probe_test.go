package tunnel

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// The probe-resistance suite: a server with users and the same server with
// no tunnel at all must answer every request that is not an authenticated
// proxy request identically, on every transport.

// probeAuths are Proxy-Authorization values a prober might send; none is
// valid.
func probeAuths() map[string][]string {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	return map[string][]string{
		"none":          nil,
		"wrong token":   {basicAuth(testUser, "wrong")},
		"unknown user":  {basicAuth("mallory", testToken)},
		"garbled":       {"Basic !!!not-base64!!!"},
		"bearer":        {"Bearer " + testToken},
		"no colon":      {"Basic " + b64(testUser+testToken)},
		"empty token":   {"Basic " + b64(testUser+":")},
		"empty":         {""},
		"scheme only":   {"Basic"},
		"too long":      {"Basic " + b64(testUser+":"+testToken+strings.Repeat("A", 600))},
		"two headers":   {basicAuth(testUser, testToken), basicAuth(testUser, "wrong")},
		"lowercase bad": {"basic " + b64(testUser+":nope")},
	}
}

var dateLine = regexp.MustCompile(`(?m)^Date: .*\r\n`)

// rawH1 sends raw bytes over a new TLS connection and returns everything
// the server answers until it closes or goes quiet.
func rawH1(t *testing.T, ts *testServer, raw string) string {
	tc, err := tls.Dial("tcp", ts.addr, probeTLS(t, ts, "http/1.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	io.WriteString(tc, raw)
	var out bytes.Buffer
	buf := make([]byte, 4096)
	tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, err := tc.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			if !strings.Contains(err.Error(), "timeout") && err != io.EOF {
				fmt.Fprintf(&out, "\n[error: %v]", err)
			}
			break
		}
		tc.SetReadDeadline(time.Now().Add(400 * time.Millisecond))
	}
	return dateLine.ReplaceAllString(out.String(), "Date: X\r\n")
}

func probeRequestsH1(target string) map[string]string {
	reqs := map[string]string{
		"GET /":             "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
		"GET file":          "GET /notes.txt HTTP/1.1\r\nHost: localhost\r\n\r\n",
		"GET missing":       "GET /missing HTTP/1.1\r\nHost: localhost\r\n\r\n",
		"HEAD /":            "HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n",
		"OPTIONS *":         "OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n",
		"CONNECT HTTP/1.0":  "CONNECT example.com:443 HTTP/1.0\r\n\r\n",
		"GET / valid proxy": "GET / HTTP/1.1\r\nHost: localhost\r\nProxy-Authorization: " + basicAuth(testUser, testToken) + "\r\n\r\n",
		"CONNECT valid in Authorization": "CONNECT " + target + " HTTP/1.1\r\nHost: " + target +
			"\r\nAuthorization: " + basicAuth(testUser, testToken) + "\r\n\r\n",
		"garbage": "\x16\x03\x01 hello?\r\n\r\n",
	}
	for name, vals := range probeAuths() {
		hdr := ""
		for _, v := range vals {
			hdr += "Proxy-Authorization: " + v + "\r\n"
		}
		reqs["CONNECT target, "+name] = "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n" + hdr + "\r\nearly data"
		reqs["CONNECT public, "+name] = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n" + hdr + "\r\n"
		reqs["absolute, "+name] = "GET http://" + target + "/ HTTP/1.1\r\nHost: " + target + "\r\n" + hdr + "\r\n"
		reqs["GET / with proxy auth, "+name] = "GET / HTTP/1.1\r\nHost: localhost\r\n" + hdr + "\r\n"
	}
	return reqs
}

// probeResult is what a client can observe of one HTTP/2 or HTTP/3 exchange.
type probeResult struct {
	Status int
	Header string
	Body   string
	Err    string
}

func observe(resp *http.Response, err error) probeResult {
	if err != nil {
		return probeResult{Err: err.Error()}
	}
	defer resp.Body.Close()
	body, berr := io.ReadAll(resp.Body)
	var keys []string
	for k := range resp.Header {
		if k != "Date" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var h strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&h, "%s: %q\n", k, resp.Header[k])
	}
	r := probeResult{Status: resp.StatusCode, Header: h.String(), Body: string(body)}
	if berr != nil {
		r.Err = "body: " + berr.Error()
	}
	return r
}

type probeReq struct {
	method, host, path string
	auth               []string
	body               string
}

func probeRequestsH2H3(target string) map[string]probeReq {
	reqs := map[string]probeReq{
		"GET /":             {method: "GET", host: "localhost", path: "/"},
		"GET file":          {method: "GET", host: "localhost", path: "/notes.txt"},
		"GET missing":       {method: "GET", host: "localhost", path: "/missing"},
		"HEAD /":            {method: "HEAD", host: "localhost", path: "/"},
		"POST /":            {method: "POST", host: "localhost", path: "/", body: "a=b"},
		"GET / valid proxy": {method: "GET", host: "localhost", path: "/", auth: []string{basicAuth(testUser, testToken)}},
	}
	for name, vals := range probeAuths() {
		reqs["CONNECT target, "+name] = probeReq{method: "CONNECT", host: target, auth: vals}
		reqs["CONNECT target with data, "+name] = probeReq{method: "CONNECT", host: target, auth: vals, body: "early data"}
		reqs["CONNECT public, "+name] = probeReq{method: "CONNECT", host: "example.com:443", auth: vals}
		reqs["GET / with proxy auth, "+name] = probeReq{method: "GET", host: "localhost", path: "/", auth: vals}
		reqs["GET origin, "+name] = probeReq{method: "GET", host: target, path: "/", auth: vals}
		reqs["GET other name, "+name] = probeReq{method: "GET", host: "example.com", path: "/notes.txt", auth: vals}
	}
	return reqs
}

func (p probeReq) request(ctx context.Context, server string) *http.Request {
	var body io.Reader
	if p.body != "" {
		body = strings.NewReader(p.body)
	}
	req, _ := http.NewRequestWithContext(ctx, p.method, "https://"+server+p.path, body)
	req.Host = p.host
	for _, v := range p.auth {
		req.Header.Add("Proxy-Authorization", v)
	}
	return req
}

// roundTripper sends one request over a new connection for mode.
func roundTripper(t *testing.T, ts *testServer, mode string) func(*http.Request) (*http.Response, error) {
	switch mode {
	case "h2", "h2stdsrv":
		return func(req *http.Request) (*http.Response, error) {
			var protos http.Protocols
			protos.SetHTTP2(true)
			tr := &http.Transport{TLSClientConfig: probeTLS(t, ts, "h2"), Protocols: &protos}
			cc, err := tr.NewClientConn(req.Context(), "https", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cc.Close() })
			return cc.RoundTrip(req)
		}
	default:
		return func(req *http.Request) (*http.Response, error) {
			tr := &http3.Transport{TLSClientConfig: probeTLS(t, ts, http3.NextProtoH3)}
			t.Cleanup(func() { tr.Close() })
			return tr.RoundTrip(req)
		}
	}
}

func TestProbeResistance(t *testing.T) {
	site := newWebsite(t)
	target := echoTarget(t)
	// The probes are standard clients: h2std would be h2 again.
	wire := slices.DeleteFunc(slices.Clone(modes), func(m string) bool { return m == "h2std" })
	runOver(t, wire, func(t *testing.T, mode string) { testProbeResistance(t, site, target, mode) })
}

func testProbeResistance(t *testing.T, site http.Handler, target, mode string) {
	h, err := NewHandler(HandlerConfig{Next: site, Users: testUsers(t), AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	withUsers := newTestServer(t, h)
	website := newTestServer(t, site)
	type pair struct{ a, b any }
	results := map[string]*pair{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	record := func(name string, a, b any) {
		mu.Lock()
		results[name] = &pair{a, b}
		mu.Unlock()
	}
	if mode == "h1" {
		for name, raw := range probeRequestsH1(target) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				record(name, rawH1(t, withUsers, raw), rawH1(t, website, raw))
			}()
		}
	} else {
		// At most 8 at a time: quic-go refuses (CONNECTION_REFUSED)
		// handshakes beyond the 32 its server queues before they are
		// accepted, which a loaded machine reaches with ~90 at once.
		sem := make(chan struct{}, 8)
		for name, p := range probeRequestsH2H3(target) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				a := observe(roundTripper(t, withUsers, mode)(p.request(ctx, withUsers.addr)))
				b := observe(roundTripper(t, website, mode)(p.request(ctx, website.addr)))
				record(name, a, b)
			}()
		}
	}
	wg.Wait()
	for name, p := range results {
		if fmt.Sprintf("%#v", p.a) != fmt.Sprintf("%#v", p.b) {
			t.Errorf("%s: the tunnel server answers\n%#v\nthe bare website answers\n%#v", name, p.a, p.b)
		}
	}
	if h.Active() != 0 || h.cfg.Users.Stats()[0].Total != 0 {
		t.Errorf("a probe opened a tunnel: %+v", h.cfg.Users.Stats())
	}
	// The suite must be able to fail: a valid CONNECT is answered
	// differently.
	if mode == "h1" {
		valid := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\nProxy-Authorization: " + basicAuth(testUser, testToken) + "\r\n\r\n"
		if a, b := rawH1(t, withUsers, valid), rawH1(t, website, valid); a == b {
			t.Errorf("a valid CONNECT looks like the website: %q", a)
		}
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p := probeReq{method: "CONNECT", host: "localhost:1", auth: []string{basicAuth(testUser, testToken)}}
		a := observe(roundTripper(t, withUsers, mode)(p.request(ctx, withUsers.addr)))
		b := observe(roundTripper(t, website, mode)(p.request(ctx, website.addr)))
		if a == b {
			t.Errorf("a valid CONNECT looks like the website: %+v", a)
		}
	}
}
