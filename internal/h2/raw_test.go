package h2

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/porta443/porta/internal/h2/h2test"
	"golang.org/x/net/http2"
)

// dialRaw connects a client made of frames to ts, which writes what it
// is told and records what comes back, for tests that misbehave on
// purpose; it sends the preface and settings (none: the RFC's defaults).
func dialRaw(t testing.TB, ts *testServer, settings ...http2.Setting) *h2test.Client {
	t.Helper()
	return h2test.Dial(t, ts.addr, ts.cert.ClientTLS("h2"), settings...)
}

// dialTLS makes a TLS connection to ts that chose h2, and sends nothing.
func dialTLS(t testing.TB, ts *testServer) *tls.Conn {
	t.Helper()
	tc, err := tls.Dial("tcp", ts.addr, ts.cert.ClientTLS("h2"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	tc.SetReadDeadline(time.Now().Add(30 * time.Second))
	return tc
}
