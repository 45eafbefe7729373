package tunnel

import (
	"context"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"
)

// timingShapes are requests a prober can send that all get the website's
// page, and so must take the same time: a plain request for the site, and
// proxy-shaped ones (another host, as a browser sends plain-http requests
// to an HTTPS proxy over HTTP/2) without credentials, with a known user's
// wrong token, and with a user that does not exist.
//
// A request with a Proxy-Authorization field is larger, and takes longer
// to decode on any server; so the shapes with credentials are compared
// with the website's page asked for with a field of the same size under
// another name, as a stock site would read it.
var timingShapes = []struct {
	name, host, field, value string
	like                     int // the shape it must take as long as
}{
	{"website", "localhost", "", "", 0},
	{"no credentials", "example.com", "", "", 0},
	{"website, a field of that size", "localhost", "X-Proxy-Auth-Sized", basicAuth(testUser, "wrong-token-of-the-same-length"), 2},
	{"bad credentials", "example.com", "Proxy-Authorization", basicAuth(testUser, "wrong-token-of-the-same-length"), 2},
	{"unknown user", "example.com", "Proxy-Authorization", basicAuth("mallory", "wrong-token-of-the-same-length"), 2},
}

// TestProbeTiming sends 2,000 of each shape over one HTTP/2 connection,
// interleaved so that the machine's noise falls on all of them alike, and
// compares their latency distributions: a shape whose median or p90
// stood apart would tell a prober what it cannot see otherwise (that the
// server checks credentials, or which users exist). The bound is loose (a
// median may stand apart from the one it is compared with by 10% or 2 us,
// whichever is more; a p90 by 25% or 20 us): the test is for a difference
// in what the server does, not for the machine's speed. Run with -v for
// the figures.
func TestProbeTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 requests of each shape")
	}
	ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
	var protos http.Protocols
	protos.SetHTTP2(true)
	tr := &http.Transport{TLSClientConfig: ts.cert.ClientTLS("h2"), Protocols: &protos}
	cc, err := tr.NewClientConn(context.Background(), "https", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	lat := make([][]time.Duration, len(timingShapes))
	const n = 2000
	for i := range n + 100 {
		for s, shape := range timingShapes {
			req, _ := http.NewRequest("GET", "https://"+ts.addr+"/", nil)
			req.Host = shape.host
			if shape.field != "" {
				req.Header.Set(shape.field, shape.value)
			}
			start := time.Now()
			resp, err := cc.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			d := time.Since(start)
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %d, want the website's page", shape.name, resp.StatusCode)
			}
			if i >= 100 { // the first hundred warm up
				lat[s] = append(lat[s], d)
			}
		}
	}
	if h := ts.h.cfg.Users.Stats(); h[0].Total != 0 {
		t.Fatalf("a probe opened a tunnel: %+v", h)
	}
	for s, shape := range timingShapes {
		q, base := quantiles(lat[s]), quantiles(lat[shape.like])
		t.Logf("%-30s median %6.1f us  p90 %6.1f us", shape.name, us(q[0]), us(q[1]))
		if apart(q[0], base[0], 0.10, 2*time.Microsecond) || apart(q[1], base[1], 0.25, 20*time.Microsecond) {
			t.Errorf("%s stands apart from %s: median %.1f us against %.1f, p90 %.1f against %.1f",
				shape.name, timingShapes[shape.like].name, us(q[0]), us(base[0]), us(q[1]), us(base[1]))
		}
	}
}

// quantiles is the median and the 90th percentile of d.
func quantiles(d []time.Duration) [2]time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return [2]time.Duration{s[len(s)/2], s[len(s)*9/10]}
}

// apart reports whether a differs from b by more than frac of b and more
// than abs.
func apart(a, b time.Duration, frac float64, abs time.Duration) bool {
	diff := a - b
	if diff < 0 {
		diff = -diff
	}
	return diff > abs && float64(diff) > frac*float64(b)
}

func us(d time.Duration) float64 { return float64(d) / 1e3 }
