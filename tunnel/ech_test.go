package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porta443/porta/internal/ech"
	"github.com/porta443/porta/internal/testenv"
	"github.com/quic-go/quic-go/http3"
)

// testPublicName is the ECH public name of the tunnel tests' servers.
const testPublicName = "public.test"

// testECHRing is the keys of the tunnel tests' servers with ECH: one
// ring for all, so that two servers look alike, after one rotation.
var testECHRing = sync.OnceValue(func() ech.Ring {
	r, err := ech.NewRing(time.Now())
	if err == nil {
		r, err = r.Rotate(time.Now())
	}
	if err != nil {
		panic(err)
	}
	return r
})

// strangerECH is a config list of a key no test server has.
var strangerECH = sync.OnceValue(func() []byte {
	r, err := ech.NewRing(time.Now())
	if err != nil {
		panic(err)
	}
	return r.ConfigList(testPublicName)
})

// probeECH is the ECH variant a test runs in, by its name (as
// stdServerMode finds h2stdsrv): under "ech-plain" and "ech-accepted"
// every test server accepts ECH with testECHRing, and under
// "ech-accepted" the probes' TLS offers it too.
func probeECH(t testing.TB) string {
	for _, part := range strings.Split(t.Name(), "/") {
		if part == "ech-plain" || part == "ech-accepted" {
			return part
		}
	}
	return ""
}

// withECH gives c the server's ECH keys: o's, or the probe variant's.
func (o serverOpts) withECH(t testing.TB, c *tls.Config) *tls.Config {
	c.EncryptedClientHelloKeys = o.ech
	if o.ech == nil && probeECH(t) != "" {
		c.EncryptedClientHelloKeys = testECHRing().TLSKeys(testPublicName)
	}
	return c
}

// probeTLS is a client config for ts that offers ECH under the
// "ech-accepted" variant.
func probeTLS(t testing.TB, ts *testServer, nextProtos ...string) *tls.Config {
	c := ts.cert.ClientTLS(nextProtos...)
	if probeECH(t) == "ech-accepted" {
		c.EncryptedClientHelloConfigList = testECHRing().ConfigList(testPublicName)
	}
	return c
}

// TestProbeResistanceECH runs the probe-resistance suite with ECH on: the
// servers accept it, and the probes come with a plain ClientHello
// (ech-plain) or with ECH (ech-accepted); a probe whose config the
// servers do not know (ech-unknown) gets the same rejection, with the
// same retry configs, from both, and with those, the same website.
func TestProbeResistanceECH(t *testing.T) {
	t.Run("ech-plain", func(t *testing.T) {
		TestProbeResistance(t)
		// The servers did accept ECH.
		ts := newTestServer(t, newWebsite(t))
		c := ts.cert.ClientTLS("http/1.1")
		c.EncryptedClientHelloConfigList = testECHRing().ConfigList(testPublicName)
		if tc, err := tls.Dial("tcp", ts.addr, c); err != nil || !tc.ConnectionState().ECHAccepted {
			t.Fatalf("ECH: %v, want it accepted", err)
		} else {
			tc.Close()
		}
	})
	t.Run("ech-accepted", func(t *testing.T) {
		TestProbeResistance(t)
		// The probes did come with ECH, and had it accepted.
		ts := newTestServer(t, newWebsite(t))
		for _, mode := range []string{"h2", "h3"} {
			resp, err := roundTripper(t, ts, mode)(probeReq{method: "GET", host: "localhost", path: "/"}.request(t.Context(), ts.addr))
			if err != nil || !resp.TLS.ECHAccepted {
				t.Fatalf("%s: %v, want ECH accepted", mode, err)
			}
			resp.Body.Close()
		}
		if tc, err := tls.Dial("tcp", ts.addr, probeTLS(t, ts, "http/1.1")); err != nil || !tc.ConnectionState().ECHAccepted {
			t.Fatalf("h1: %v, want ECH accepted", err)
		} else {
			tc.Close()
		}
	})
	t.Run("ech-unknown", func(t *testing.T) {
		cert := testenv.NewCertFor(t, "localhost", testPublicName)
		keys := testECHRing().TLSKeys(testPublicName)
		h, err := NewHandler(HandlerConfig{Next: newWebsite(t), Users: testUsers(t), AllowPrivate: true})
		if err != nil {
			t.Fatal(err)
		}
		withUsers := newTestServerOpts(t, h, serverOpts{cert: cert, ech: keys})
		website := newTestServerOpts(t, newWebsite(t), serverOpts{cert: cert, ech: keys})
		for _, mode := range []string{"h1", "h2", "h3"} {
			var outcomes []string
			for _, ts := range []*testServer{withUsers, website} {
				retry := unknownConfigProbe(t, ts, mode)
				c := ts.cert.ClientTLS()
				c.EncryptedClientHelloConfigList = retry
				got := observe(echRoundTrip(t, ts, mode, c, probeReq{method: "GET", host: "localhost", path: "/"}))
				outcomes = append(outcomes, fmt.Sprintf("retry %x, then %#v", retry, got))
			}
			if outcomes[0] != outcomes[1] {
				t.Errorf("%s, an unknown config: the tunnel server\n%s\nthe bare website\n%s", mode, outcomes[0], outcomes[1])
			}
			if !strings.Contains(outcomes[0], "Status:200") {
				t.Errorf("%s: with the retry configs, not the website: %s", mode, outcomes[0])
			}
		}
	})
}

// unknownConfigProbe makes a handshake with ts over mode offering a
// config of another key, and returns the retry configs of the rejection,
// which came after crypto/tls checked the outer handshake's certificate
// for the public name.
func unknownConfigProbe(t *testing.T, ts *testServer, mode string) (retry []byte) {
	c := ts.cert.ClientTLS()
	c.EncryptedClientHelloConfigList = strangerECH()
	_, err := echRoundTrip(t, ts, mode, c, probeReq{method: "GET", host: "localhost", path: "/"})
	rej, ok := errors.AsType[*tls.ECHRejectionError](err)
	if !ok {
		t.Fatalf("%s with an unknown config: %v, want a rejection", mode, err)
	}
	return rej.RetryConfigList
}

// echRoundTrip sends p to ts over mode on a new connection with the
// client config c.
func echRoundTrip(t *testing.T, ts *testServer, mode string, c *tls.Config, p probeReq) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel) // the body is read after this returns
	if mode == "h3" {
		tr := &http3.Transport{TLSClientConfig: c}
		t.Cleanup(func() { tr.Close() })
		return tr.RoundTrip(p.request(ctx, ts.addr))
	}
	var protos http.Protocols
	protos.SetHTTP1(mode == "h1")
	protos.SetHTTP2(mode == "h2")
	tr := &http.Transport{TLSClientConfig: c, Protocols: &protos}
	t.Cleanup(tr.CloseIdleConnections)
	return tr.RoundTrip(p.request(ctx, ts.addr))
}
