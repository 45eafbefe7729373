package server_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/porta443/porta/internal/ech"
	"github.com/porta443/porta/internal/testenv"
	"github.com/porta443/porta/server"
	"github.com/quic-go/quic-go/http3"
)

// The ECH tests' names: the server's real one, which ECH hides, and the
// public one its outer ClientHellos carry.
const (
	realName   = "hidden-origin.test"
	publicName = "public.test"
)

// echServer is a running server with ECH on, a certificate for both
// names, and a record of what each request's TLS showed.
type echServer struct {
	*running
	state string // StateDir

	mu   sync.Mutex
	seen []tls.ConnectionState
}

// startECH runs a server with ECH for cfg (its StateDir and certificate
// are set unless given).
func startECH(t *testing.T, cfg server.Config) *echServer {
	t.Helper()
	e := &echServer{state: cfg.StateDir}
	if e.state == "" {
		e.state = t.TempDir()
	}
	cert := testenv.NewCertFor(t, realName, publicName, "localhost", "127.0.0.1")
	cfg.StateDir, cfg.ECHPublicName = e.state, publicName
	if cfg.CertFile == "" && !cfg.SelfSigned {
		cfg.CertFile, cfg.KeyFile = cert.CertFile, cert.KeyFile
	}
	srv, ls, _ := prepare(t, cfg, "")
	srv.ObserveRequests(func(r *http.Request) {
		e.mu.Lock()
		e.seen = append(e.seen, *r.TLS)
		e.mu.Unlock()
	})
	e.running = serve(t, srv, ls, cert)
	return e
}

// lastSeen is the TLS state of the last request the server handled.
func (e *echServer) lastSeen(t *testing.T) tls.ConnectionState {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.seen) == 0 {
		t.Fatal("the server saw no request")
	}
	return e.seen[len(e.seen)-1]
}

// echClientTLS trusts e's certificate, asks for the real name and offers
// list.
func (e *echServer) echClientTLS(list []byte) *tls.Config {
	return &tls.Config{RootCAs: e.cert.Pool, ServerName: realName, EncryptedClientHelloConfigList: list}
}

// getOver sends GET / to e over proto ("h1", "h2" or "h3") with conf.
func (e *echServer) getOver(t *testing.T, proto string, conf *tls.Config) (*http.Response, error) {
	t.Helper()
	var rt http.RoundTripper
	switch proto {
	case "h3":
		tr := &http3.Transport{TLSClientConfig: conf}
		t.Cleanup(func() { tr.Close() })
		rt = tr
	default:
		var p http.Protocols
		p.SetHTTP1(proto == "h1")
		p.SetHTTP2(proto == "h2")
		tr := &http.Transport{TLSClientConfig: conf, Protocols: &p}
		t.Cleanup(tr.CloseIdleConnections)
		rt = tr
	}
	resp, err := (&http.Client{Transport: rt, Timeout: 10 * time.Second}).Get(e.url("/"))
	if err == nil {
		resp.Body.Close()
	}
	return resp, err
}

// TestECHOverEveryTransport: over HTTP/1.1, HTTP/2 and HTTP/3, a client
// with the server's config list has ECH accepted on both sides and the
// real name reaches the server; a client with a config of another key is
// rejected after an outer handshake whose certificate crypto/tls checked
// for the public name, and gets the server's configs to retry with, which
// work.
func TestECHOverEveryTransport(t *testing.T) {
	eachHTTP2(t, func(t *testing.T) {
		e := startECH(t, server.Config{})
		list := e.srv.ECHConfigList()
		stranger, err := ech.NewRing(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, proto := range []string{"h1", "h2", "h3"} {
			resp, err := e.getOver(t, proto, e.echClientTLS(list))
			if err != nil || resp.StatusCode != 200 || !resp.TLS.ECHAccepted {
				t.Fatalf("%s with the server's config: %v %+v", proto, err, resp)
			}
			if seen := e.lastSeen(t); !seen.ECHAccepted || seen.ServerName != realName {
				t.Errorf("%s: the server saw ECH %v, name %q", proto, seen.ECHAccepted, seen.ServerName)
			}

			_, err = e.getOver(t, proto, e.echClientTLS(stranger.ConfigList(publicName)))
			rej, ok := errors.AsType[*tls.ECHRejectionError](err)
			if !ok || !bytes.Equal(rej.RetryConfigList, list) {
				t.Fatalf("%s with another key's config: %v, want a rejection with the server's list", proto, err)
			}
			resp, err = e.getOver(t, proto, e.echClientTLS(rej.RetryConfigList))
			if err != nil || !resp.TLS.ECHAccepted {
				t.Errorf("%s with the retry configs: %v", proto, err)
			}
		}
	})
}

// TestECHRotation: the server rotates its key when it is due, accepts the
// previous one until the next rotation, then rejects it with the current
// configs; the keys are kept on disk (mode 0600) for the next start.
func TestECHRotation(t *testing.T) {
	e := startECH(t, server.Config{ECHRotate: 24 * time.Hour})
	first := e.srv.ECHConfigList()
	e.srv.MaintainECH(time.Now().Add(23 * time.Hour))
	if !bytes.Equal(e.srv.ECHConfigList(), first) {
		t.Fatal("rotated before the key was due")
	}
	e.srv.MaintainECH(time.Now().Add(25 * time.Hour))
	second := e.srv.ECHConfigList()
	if bytes.Equal(second, first) {
		t.Fatal("not rotated when due")
	}
	for name, list := range map[string][]byte{"first (previous)": first, "second (current)": second} {
		if resp, err := e.getOver(t, "h2", e.echClientTLS(list)); err != nil || !resp.TLS.ECHAccepted {
			t.Errorf("%s config after one rotation: %v", name, err)
		}
	}

	e.srv.MaintainECH(time.Now().Add(50 * time.Hour))
	third := e.srv.ECHConfigList()
	_, err := e.getOver(t, "h2", e.echClientTLS(first))
	rej, ok := errors.AsType[*tls.ECHRejectionError](err)
	if !ok {
		t.Fatalf("the first config after two rotations: %v, want a rejection", err)
	}
	retry, err := ech.ParseList(rej.RetryConfigList)
	current, _ := ech.ParseList(third)
	previous, _ := ech.ParseList(second)
	if err != nil || len(retry) != 2 || !bytes.Equal(retry[0].Marshal(), current[0].Marshal()) || !bytes.Equal(retry[1].Marshal(), previous[0].Marshal()) {
		t.Fatalf("retry configs %+v (%v), want the current config, then the previous", retry, err)
	}
	if resp, err := e.getOver(t, "h2", e.echClientTLS(rej.RetryConfigList)); err != nil || !resp.TLS.ECHAccepted {
		t.Errorf("with the retry configs: %v", err)
	}

	file := filepath.Join(e.state, "ech-keys.pem")
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v %v, want mode 0600", file, fi.Mode(), err)
	}
	again, err := server.ECHConfigList(server.Config{StateDir: e.state, ECHPublicName: publicName})
	if err != nil || !bytes.Equal(again, third) {
		t.Errorf("the keys on disk give %x (%v), want the current list", again, err)
	}
	restarted := startECH(t, server.Config{StateDir: e.state})
	if !bytes.Equal(restarted.srv.ECHConfigList(), third) {
		t.Error("a restart made new keys")
	}
	if resp, err := restarted.getOver(t, "h2", restarted.echClientTLS(second)); err != nil || !resp.TLS.ECHAccepted {
		t.Errorf("the previous key after a restart: %v", err)
	}
}

// TestECHConfigErrors: what New refuses, by the Config field.
func TestECHConfigErrors(t *testing.T) {
	plain := testenv.NewCert(t) // localhost only
	for _, tc := range []struct {
		name  string
		cfg   server.Config
		field string
	}{
		{"certificate without the public name", server.Config{ECHPublicName: publicName, CertFile: plain.CertFile, KeyFile: plain.KeyFile}, "ECHPublicName"},
		{"one label", server.Config{ECHPublicName: "localhost", SelfSigned: true}, "ECHPublicName"},
		{"an address", server.Config{ECHPublicName: "192.0.2.1", SelfSigned: true}, "ECHPublicName"},
		{"rotate too often", server.Config{ECHPublicName: publicName, SelfSigned: true, ECHRotate: 30 * time.Minute}, "ECHRotate"},
	} {
		tc.cfg.StateDir = t.TempDir()
		tc.cfg.Upstreams = []string{"udp://127.0.0.1:53"}
		srv, err := server.New(tc.cfg)
		if err == nil {
			srv.Close()
		}
		if ce, ok := errors.AsType[*server.ConfigError](err); !ok || ce.Field != tc.field {
			t.Errorf("%s: %v, want a ConfigError for %s", tc.name, err, tc.field)
		}
	}
	if _, err := server.ECHConfigList(server.Config{StateDir: t.TempDir()}); err == nil {
		t.Error("ECHConfigList without a public name")
	}
	state := t.TempDir()
	os.WriteFile(filepath.Join(state, "ech-keys.pem"), []byte("garbage"), 0o600)
	if _, err := server.ECHConfigList(server.Config{StateDir: state, ECHPublicName: publicName}); err == nil {
		t.Error("ECHConfigList read a broken key file")
	}
}

// TestECHSelfSignedCoversThePublicName: a self-signed certificate kept
// from before ECH was turned on is issued again for the public name too,
// with the same key and so the same pin.
func TestECHSelfSignedCoversThePublicName(t *testing.T) {
	state := t.TempDir()
	before := start(t, server.Config{SelfSigned: true, StateDir: state}, false)
	pin := before.srv.Pin()
	leaf := servedLeaf(t, before, time.Now())
	if leaf.VerifyHostname(publicName) == nil {
		t.Fatal("the certificate covers the public name already")
	}
	after := startECH(t, server.Config{SelfSigned: true, StateDir: state})
	leaf = servedLeaf(t, after.running, time.Now())
	if after.srv.Pin() != pin || leaf.VerifyHostname(publicName) != nil {
		t.Errorf("pin %s (was %s), names %v: want the same pin and %s", after.srv.Pin(), pin, leaf.DNSNames, publicName)
	}
	if resp, err := after.getOver(t, "h2", &tls.Config{
		InsecureSkipVerify:             true,
		ServerName:                     "localhost",
		EncryptedClientHelloConfigList: after.srv.ECHConfigList(),
	}); err != nil || !resp.TLS.ECHAccepted {
		t.Errorf("ECH with the self-signed certificate: %v", err)
	}
}

// TestECHReloadKeepsACertificateForThePublicName: a --cert certificate
// read again (SIGHUP) that does not cover the public name is refused, and
// the one in use kept.
func TestECHReloadKeepsACertificateForThePublicName(t *testing.T) {
	e := startECH(t, server.Config{})
	narrow := testenv.NewCert(t) // localhost only
	for _, f := range [][2]string{{narrow.CertFile, e.cert.CertFile}, {narrow.KeyFile, e.cert.KeyFile}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(f[1], b, 0o600)
	}
	err := e.srv.Reload()
	if ce, ok := errors.AsType[*server.ConfigError](err); !ok || ce.Field != "ECHPublicName" {
		t.Fatalf("Reload: %v, want a ConfigError for ECHPublicName", err)
	}
	if resp, err := e.getOver(t, "h2", e.echClientTLS(e.srv.ECHConfigList())); err != nil || !resp.TLS.ECHAccepted {
		t.Errorf("after the refused reload: %v", err)
	}
}

// TestECHWithACME: with ACME names and no other certificate, the public
// name is obtained from ACME too, so that the outer handshake has a
// certificate; the ACME names are the server's own for its HTTPS
// records, the public name not. With a --cert certificate as well, that
// one covers the public name and ACME is not asked for it.
func TestECHWithACME(t *testing.T) {
	cfg := server.Config{
		ACME:          []string{"vps.example.test"},
		ECHPublicName: publicName,
		StateDir:      t.TempDir(),
		Upstreams:     []string{"udp://127.0.0.1:53"},
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if got := srv.ACMENames(); !slices.Equal(got, []string{"vps.example.test", publicName}) {
		t.Errorf("ACME names %q, want the public name added", got)
	}
	if !srv.OwnsHTTPSRecord("vps.example.test.", 443) || srv.OwnsHTTPSRecord(publicName+".", 443) {
		t.Error("the own names are not the ACME names but the public name")
	}

	cert := testenv.NewCertFor(t, "other.example.test", publicName)
	cfg.CertFile, cfg.KeyFile, cfg.StateDir = cert.CertFile, cert.KeyFile, t.TempDir()
	withCert, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer withCert.Close()
	if got := withCert.ACMENames(); !slices.Equal(got, []string{"vps.example.test"}) {
		t.Errorf("with --cert, ACME names %q, want the given one alone", got)
	}
	if !withCert.OwnsHTTPSRecord("other.example.test.", 443) || !withCert.OwnsHTTPSRecord("vps.example.test.", 443) {
		t.Error("the own names are not the certificate's and the ACME names")
	}
}
