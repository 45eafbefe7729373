package server_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/porta443/porta/internal/selfsigned"
	"github.com/porta443/porta/internal/testenv"
	"github.com/porta443/porta/server"
)

// logRecorder keeps a server's log records for a test to look at.
type logRecorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logRecorder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logRecorder) logger() *slog.Logger { return slog.New(slog.NewJSONHandler(l, nil)) }

// records are the records logged so far whose msg is msg.
func (l *logRecorder) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(l.buf.Bytes()), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// servedLeaf is the certificate r serves, as a client that trusts it by
// pin alone sees it at the time now.
func servedLeaf(t *testing.T, r *running, now time.Time) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", r.addr, &tls.Config{
		InsecureSkipVerify: true, // checked below, at now, as porta's client checks a pin
		VerifyConnection: func(cs tls.ConnectionState) error {
			leaf := cs.PeerCertificates[0]
			if got := selfsigned.Pin(leaf); got != r.srv.Pin() {
				return fmt.Errorf("served pin %s, Pin() %s", got, r.srv.Pin())
			}
			if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
				return fmt.Errorf("not valid at %v: %v to %v", now, leaf.NotBefore, leaf.NotAfter)
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// TestSelfSignedRenewalKeepsThePin: a running server issues its
// self-signed certificate again with the same key once a third of its
// year is left, serves it at once and keeps it for the next start; the
// pin never changes.
func TestSelfSignedRenewalKeepsThePin(t *testing.T) {
	state := t.TempDir()
	logs := &logRecorder{}
	r := start(t, server.Config{SelfSigned: true, StateDir: state, Logger: logs.logger()}, false)
	pin := r.srv.Pin()
	first := servedLeaf(t, r, time.Now())
	if life := first.NotAfter.Sub(first.NotBefore); life != selfsigned.Validity {
		t.Fatalf("valid for %v, want %v", life, selfsigned.Validity)
	}

	notYet := first.NotAfter.Add(-130 * 24 * time.Hour)
	r.srv.MaintainCertificates(notYet)
	if got := servedLeaf(t, r, notYet); got.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatalf("renewed with %v left", first.NotAfter.Sub(notYet))
	}

	due := first.NotAfter.Add(-100 * 24 * time.Hour)
	r.srv.MaintainCertificates(due)
	renewed := servedLeaf(t, r, due)
	if renewed.SerialNumber.Cmp(first.SerialNumber) == 0 || !renewed.NotAfter.After(first.NotAfter) {
		t.Fatalf("not renewed with %v left: serial %v, until %v", first.NotAfter.Sub(due), renewed.SerialNumber, renewed.NotAfter)
	}
	if r.srv.Pin() != pin {
		t.Fatalf("pin changed from %s to %s", pin, r.srv.Pin())
	}
	if n := len(logs.records(t, "self-signed certificate renewed")); n != 1 {
		t.Errorf("%d renewal log lines, want 1", n)
	}

	// The next start takes the renewed one from the state directory.
	next, err := server.New(server.Config{SelfSigned: true, StateDir: state, Upstreams: []string{testenv.NewUpstream(t, nil).URL()}})
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	if next.Pin() != pin {
		t.Fatalf("pin after restart %s, want %s", next.Pin(), pin)
	}
	onDisk := readCert(t, filepath.Join(state, "self-signed.crt"))
	if onDisk.SerialNumber.Cmp(renewed.SerialNumber) != 0 {
		t.Fatalf("state directory holds serial %v, the server serves %v", onDisk.SerialNumber, renewed.SerialNumber)
	}
}

// TestSelfSignedFromBeforeIsRenewedAtStart: a kept certificate that is
// valid for ten years (as porta once made them) or has expired is issued
// again with the same key when the server starts.
func TestSelfSignedFromBeforeIsRenewedAtStart(t *testing.T) {
	upstream := []string{testenv.NewUpstream(t, nil).URL()}
	for _, tc := range []struct {
		name                string
		notBefore, notAfter time.Time
	}{
		{"ten years", time.Now().Add(-time.Hour), time.Now().AddDate(10, 0, 0)},
		{"expired", time.Now().AddDate(-1, -1, 0), time.Now().AddDate(0, -1, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := t.TempDir()
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			old := writeSelfSigned(t, state, key, tc.notBefore, tc.notAfter)
			srv, err := server.New(server.Config{SelfSigned: true, StateDir: state, Upstreams: upstream})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			if srv.Pin() != selfsigned.Pin(old) {
				t.Fatalf("pin %s, want the kept key's %s", srv.Pin(), selfsigned.Pin(old))
			}
			now := readCert(t, filepath.Join(state, "self-signed.crt"))
			if life := now.NotAfter.Sub(now.NotBefore); life != selfsigned.Validity || time.Now().After(now.NotAfter) {
				t.Fatalf("kept certificate valid %v to %v", now.NotBefore, now.NotAfter)
			}
		})
	}
}

// writeSelfSigned puts a self-signed certificate for key, valid from
// notBefore to notAfter, where --self-signed keeps its pair.
func writeSelfSigned(t *testing.T, state string, key *ecdsa.PrivateKey, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), NotBefore: notBefore, NotAfter: notAfter,
		DNSNames: []string{"localhost"}, BasicConstraintsValid: true, IsCA: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(state, "self-signed.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(state, "self-signed.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM", file)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestCertExpiryWarnings: a --cert certificate within 14 days of its
// expiry, or past it, is warned about when it is loaded, on Reload, and
// once a day while the server runs.
func TestCertExpiryWarnings(t *testing.T) {
	const soon, expired = "certificate expires soon", "certificate has expired"
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	upstream := []string{testenv.NewUpstream(t, nil).URL()}
	for _, tc := range []struct {
		name   string
		issued time.Time // valid for selfsigned.Validity from an hour before
		want   string
	}{
		{"fresh", time.Now(), ""},
		{"15 days left", time.Now().Add(-selfsigned.Validity + 15*24*time.Hour + time.Hour), ""},
		{"10 days left", time.Now().Add(-selfsigned.Validity + 10*24*time.Hour), soon},
		{"expired", time.Now().Add(-selfsigned.Validity - 24*time.Hour), expired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert := testenv.NewCertAt(t, key, tc.issued)
			logs := &logRecorder{}
			srv, err := server.New(server.Config{CertFile: cert.CertFile, KeyFile: cert.KeyFile, Upstreams: upstream, Logger: logs.logger()})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			if err := srv.Reload(); err != nil {
				t.Fatal(err)
			}
			got := len(logs.records(t, soon)) + len(logs.records(t, expired))
			if want := len(logs.records(t, tc.want)); tc.want == "" && got != 0 || tc.want != "" && (got != 2 || want != 2) {
				t.Fatalf("after New and Reload: %d warnings; want 2 %q\n%s", got, tc.want, logs.buf.String())
			}
		})
	}

	// While serving, a certificate that comes within 14 days is warned
	// about, and again a day later, not every hour.
	cert := testenv.NewCert(t)
	logs := &logRecorder{}
	r := start(t, server.Config{CertFile: cert.CertFile, KeyFile: cert.KeyFile, Logger: logs.logger()}, false)
	at := cert.TLS.Leaf.NotAfter.Add(-13 * 24 * time.Hour)
	for _, step := range []struct {
		after time.Duration
		want  int
	}{{0, 1}, {time.Hour, 1}, {23 * time.Hour, 1}, {25 * time.Hour, 2}, {13 * 24 * time.Hour, 3}} {
		r.srv.MaintainCertificates(at.Add(step.after))
		if got := len(logs.records(t, soon)) + len(logs.records(t, expired)); got != step.want {
			t.Fatalf("%v after it came within 14 days: %d warnings, want %d\n%s", step.after, got, step.want, logs.buf.String())
		}
	}
	if n := len(logs.records(t, expired)); n != 1 {
		t.Errorf("%d warnings that it has expired, want 1", n)
	}
}

// TestSNINotCoveredIsWarnedOncePerName: a handshake for a name the --cert
// certificate does not cover is warned about once per name, for at most
// 64 names, and again for a new certificate; covered names and a
// self-signed certificate are not.
func TestSNINotCoveredIsWarnedOncePerName(t *testing.T) {
	const msg, more = "certificate does not cover a name clients reach the server by",
		"more names not covered by the certificate; no more are logged until it changes"
	logs := &logRecorder{}
	r := start(t, server.Config{Logger: logs.logger()}, false)
	hello := func(name string) {
		t.Helper()
		cfg := r.cert.ClientTLS("http/1.1")
		cfg.ServerName, cfg.InsecureSkipVerify = name, true // the name is what is tested, not the trust
		conn, err := tls.Dial("tcp", r.addr, cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		conn.Close()
	}
	names := func() map[string]int {
		out := map[string]int{}
		for _, rec := range logs.records(t, msg) {
			out[rec["name"].(string)]++
		}
		return out
	}
	for _, n := range []string{"www.example.org", "localhost", "www.example.org", "Other.Example.ORG", "127.0.0.1"} {
		hello(n)
	}
	if got := names(); len(got) != 2 || got["www.example.org"] != 1 || got["other.example.org"] != 1 {
		t.Fatalf("warned about %v; want www.example.org and other.example.org once each", got)
	}

	for i := range 100 {
		hello(fmt.Sprintf("n%d.example.net", i))
	}
	if got, stop := len(logs.records(t, msg)), len(logs.records(t, more)); got != 64 || stop != 1 {
		t.Fatalf("after 102 names not covered: %d warnings and %d that more are not logged; want 64 and 1", got, stop)
	}

	// A new certificate (Reload) starts again.
	next := testenv.NewCert(t)
	os.WriteFile(r.cert.CertFile, must(os.ReadFile(next.CertFile)), 0o600)
	os.WriteFile(r.cert.KeyFile, must(os.ReadFile(next.KeyFile)), 0o600)
	if err := r.srv.Reload(); err != nil {
		t.Fatal(err)
	}
	hello("www.example.org")
	if got := names()["www.example.org"]; got != 2 {
		t.Fatalf("after a new certificate, www.example.org warned about %d times in all, want 2", got)
	}

	// A self-signed certificate is trusted by its pin: names do not matter.
	selfLogs := &logRecorder{}
	self := start(t, server.Config{SelfSigned: true, StateDir: t.TempDir(), Logger: selfLogs.logger()}, false)
	conn, err := tls.Dial("tcp", self.addr, &tls.Config{ServerName: "www.example.org", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	// GetCertificate logs before the server's hello, so before Dial returns.
	if n := len(selfLogs.records(t, msg)); n != 0 {
		t.Fatalf("self-signed: %d coverage warnings", n)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
