package tunnel

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/porta443/porta/internal/testenv"
)

// echFixture is a tunnel server that accepts ECH with testECHRing (or
// not at all) and records whether each request's ECH was accepted.
type echFixture struct {
	*testServer
	mu   sync.Mutex
	seen []bool // ECHAccepted per request
}

func newECHFixture(t *testing.T, withKeys bool) *echFixture {
	t.Helper()
	h, err := NewHandler(HandlerConfig{Next: newWebsite(t), Users: testUsers(t), AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	f := &echFixture{}
	o := serverOpts{cert: testenv.NewCertFor(t, "localhost", testPublicName, "127.0.0.1")}
	if withKeys {
		o.ech = testECHRing().TLSKeys(testPublicName)
	}
	f.testServer = newTestServerOpts(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.seen = append(f.seen, r.TLS.ECHAccepted)
		f.mu.Unlock()
		h.ServeHTTP(w, r)
	}), o)
	return f
}

func (f *echFixture) lastAccepted(t *testing.T) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.seen) == 0 {
		t.Fatal("the server saw no request")
	}
	return f.seen[len(f.seen)-1]
}

// echDialer is a Dialer for f over mode with ech; cfg sets its trust.
// It returns the Dialer, what it logs at info, and how often ConfigList
// was asked.
func echDialer(t *testing.T, f *echFixture, mode string, ech *ECH, trust func(*DialerConfig)) (*Dialer, *testenv.Logs, *atomic.Int64) {
	t.Helper()
	var asked atomic.Int64
	if ech != nil && ech.ConfigList != nil {
		list := ech.ConfigList
		ech.ConfigList = func(ctx context.Context, host, port string) ([]byte, error) {
			asked.Add(1)
			return list(ctx, host, port)
		}
	}
	logs, log := testenv.NewLogs(slog.LevelInfo)
	cfg := DialerConfig{
		Servers:   []string{serverURL("localhost:" + itoa(portOf(f.addr)))},
		RootCAs:   f.cert.Pool,
		Transport: transport(mode),
		ECH:       ech,
		Logger:    log,
	}
	if trust != nil {
		trust(&cfg)
	}
	d, err := NewDialer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, logs, &asked
}

func fixedList(list []byte) func(context.Context, string, string) ([]byte, error) {
	return func(context.Context, string, string) ([]byte, error) { return list, nil }
}

func logged(logs *testenv.Logs, msg string) bool {
	for _, l := range logs.Lines() {
		if strings.Contains(l, msg) {
			return true
		}
	}
	return false
}

// TestDialerECH: over HTTP/2 and HTTP/3 (and auto, which races them), the
// Dialer's tunnels ride connections whose ECH both ends accepted, with
// the server's config; with another key's config the server's retry
// configs are taken once, and then kept; a server that rejects ECH
// without any is not reached without it unless AllowPlain allows it, and
// then only with a warning; no config at all connects as before, logged.
func TestDialerECH(t *testing.T) {
	target := echoTarget(t)
	withKeys := newECHFixture(t, true)
	noKeys := newECHFixture(t, false)
	for _, mode := range []string{"h2", "h3", "auto"} {
		t.Run(mode, func(t *testing.T) {
			d, _, _ := echDialer(t, withKeys, mode, &ECH{ConfigList: fixedList(testECHRing().ConfigList(testPublicName))}, nil)
			pingTunnel(t, d, target)
			if !d.ECHAccepted() || !withKeys.lastAccepted(t) {
				t.Errorf("the server's config: accepted by the Dialer %v, by the server %v", d.ECHAccepted(), withKeys.lastAccepted(t))
			}

			d, logs, asked := echDialer(t, withKeys, mode, &ECH{ConfigList: fixedList(strangerECH())}, nil)
			pingTunnel(t, d, target)
			if !d.ECHAccepted() || !withKeys.lastAccepted(t) || !logged(logs, "replaced its ECH config") {
				t.Errorf("another key's config: accepted %v, server %v, logged %v", d.ECHAccepted(), withKeys.lastAccepted(t), logs.Lines())
			}
			closeSessions(d)
			pingTunnel(t, d, target)
			if asked.Load() != 1 || !d.ECHAccepted() {
				t.Errorf("after a reconnect: ConfigList asked %d times, ECH %v; want the retry configs kept", asked.Load(), d.ECHAccepted())
			}

			d, logs, _ = echDialer(t, noKeys, mode, &ECH{ConfigList: fixedList(testECHRing().ConfigList(testPublicName))}, nil)
			if _, err := d.DialContext(t.Context(), "tcp", target); err == nil || !strings.Contains(err.Error(), "rejected ECH") {
				t.Errorf("a server without ECH: %v, want a refusal to connect without it", err)
			}
			if !logged(logs, "not connecting without it") {
				t.Errorf("the refusal was not logged: %q", logs.Lines())
			}
			d, logs, _ = echDialer(t, noKeys, mode, &ECH{ConfigList: fixedList(testECHRing().ConfigList(testPublicName)), AllowPlain: true}, nil)
			pingTunnel(t, d, target)
			if d.ECHAccepted() || noKeys.lastAccepted(t) || !logged(logs, "level=WARN msg=\"the server rejected ECH; connecting without it") {
				t.Errorf("AllowPlain: ECH %v, logged %q", d.ECHAccepted(), logs.Lines())
			}

			d, logs, _ = echDialer(t, withKeys, mode, &ECH{ConfigList: fixedList(nil)}, nil)
			pingTunnel(t, d, target)
			if d.ECHAccepted() || withKeys.lastAccepted(t) || !logged(logs, "no ECH config for the server") {
				t.Errorf("no config: ECH %v, logged %q", d.ECHAccepted(), logs.Lines())
			}
		})
	}
}

// TestDialerECHOuterCertificate: a rejected handshake's certificate is
// checked for the public name as the Dialer checks the server's: by its
// roots (a certificate that does not cover the public name fails, and is
// no reason to connect without ECH), or by its pin (crypto/tls hands the
// rejection's callback no certificate, so the Dialer learns the pinned
// one from the failed check, then takes the retry configs). A wrong pin
// fails.
func TestDialerECHOuterCertificate(t *testing.T) {
	target := echoTarget(t)
	f := newECHFixture(t, true)
	narrow := newTestServerOpts(t, newWebsite(t), serverOpts{ech: testECHRing().TLSKeys(testPublicName)}) // localhost only
	for _, mode := range []string{"h2", "h3"} {
		t.Run(mode, func(t *testing.T) {
			d, _, _ := echDialer(t, &echFixture{testServer: narrow}, mode, &ECH{ConfigList: fixedList(strangerECH()), AllowPlain: true}, nil)
			if _, err := d.DialContext(t.Context(), "tcp", target); err == nil || !strings.Contains(err.Error(), testPublicName) {
				t.Errorf("a certificate without the public name: %v, want it refused", err)
			}

			pin := func(p string) func(*DialerConfig) {
				return func(c *DialerConfig) { c.RootCAs, c.Pin = nil, p }
			}
			d, _, _ = echDialer(t, f, mode, &ECH{ConfigList: fixedList(strangerECH())}, pin(pinOf(f.testServer)))
			pingTunnel(t, d, target)
			if !d.ECHAccepted() || !f.lastAccepted(t) {
				t.Errorf("by pin, after the retry configs: ECH %v", d.ECHAccepted())
			}
			d, _, _ = echDialer(t, f, mode, &ECH{ConfigList: fixedList(strangerECH()), AllowPlain: true}, pin(pinOf(narrow)))
			if _, err := d.DialContext(t.Context(), "tcp", target); err == nil {
				t.Error("a wrong pin: connected")
			}
		})
	}
}

// closeSessions closes d's connections, so that the next dial connects
// again.
func closeSessions(d *Dialer) {
	d.mu.Lock()
	ss := d.sessions
	d.sessions = nil
	d.mu.Unlock()
	for _, s := range ss {
		s.close()
	}
}
