package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/porta443/porta/internal/relay/relaytest"
	"github.com/porta443/porta/internal/testenv"
	"github.com/porta443/porta/server"
)

const acmeName = "vps.porta.test"

// acmeServer is a server whose certificates come from an ACME CA.
type acmeServer struct {
	srv  *server.Server
	ls   server.Listeners
	port string
	logs *testenv.Logs
}

// listenForACME opens the server's listeners first: the CA must know
// their ports before the server, which needs the CA's, is made.
func listenForACME(t *testing.T) server.Listeners {
	t.Helper()
	return listenForACMEWith(t, "127.0.0.1:0")
}

// listenForACMEWith is listenForACME with plain HTTP on httpAddr ("": none).
func listenForACMEWith(t *testing.T, httpAddr string) server.Listeners {
	t.Helper()
	ls, err := server.Listen("127.0.0.1:0", httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func listenerPort(l net.Listener) int { return l.Addr().(*net.TCPAddr).Port }

// serveACME makes the server for cfg on ls and serves it until the test
// ends; its log (at debug) is kept.
func serveACME(t *testing.T, cfg server.Config, ls server.Listeners) *acmeServer {
	t.Helper()
	logs, log := testenv.NewLogs(-4)
	cfg.Logger = log
	if cfg.StateDir == "" {
		cfg.StateDir = t.TempDir()
	}
	if len(cfg.Upstreams) == 0 {
		cfg.Upstreams = []string{testenv.NewUpstream(t, nil).URL()}
	}
	srv, err := server.New(cfg)
	if err != nil {
		ls.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ls) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", strings.Join(logs.Lines(), "\n"))
		}
	})
	return &acmeServer{srv: srv, ls: ls, port: portOf(ls.TCP.Addr().String()), logs: logs}
}

// tlsFor trusts roots and asks for name.
func tlsFor(roots *x509.CertPool, name string, protos ...string) *tls.Config {
	return &tls.Config{RootCAs: roots, ServerName: name, NextProtos: protos}
}

// waitForCert waits until a handshake for name succeeds with roots, and
// returns the certificate it got.
func (a *acmeServer) waitForCert(t *testing.T, roots *x509.CertPool, name string, done func(*x509.Certificate) bool) *x509.Certificate {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", a.ls.TCP.Addr().String(), tlsFor(roots, name))
		if err == nil {
			leaf := c.ConnectionState().PeerCertificates[0]
			c.Close()
			if done == nil || done(leaf) {
				return leaf
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no certificate for %s: %v", name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestACMEWithPebble: a server that starts with no certificate obtains
// one from Debian's pebble over TLS-ALPN-01 on its own port, serves the
// site, DoH and the tunnel with it, and renews it, as it nears the end
// of its short life, while an HTTP/2 connection stays up and goes on.
func TestACMEWithPebble(t *testing.T) {
	dnsSrv := testenv.NewUpstream(t, map[string][]string{acmeName: {"127.0.0.1"}})
	ls := listenForACMEWith(t, "") // no plain HTTP: TLS-ALPN-01 on the TLS port it is
	peb := startPebble(t, dnsSrv.Addr, listenerPort(ls.TCP), 1, 20*time.Second)
	cfg := server.Config{
		ACME:         []string{acmeName},
		ACMEEmail:    "ops@porta.test",
		ACMECA:       peb.Dir,
		ACMECARoot:   peb.TLSRoot,
		Users:        []string{"alice:s3cret-token"},
		AllowPrivate: true,
	}
	server.SetACMERenewCheck(&cfg, 500*time.Millisecond)
	a := serveACME(t, cfg, ls)

	first := a.waitForCert(t, peb.Roots, acmeName, nil)
	waitForLog(t, a.logs, "served key authentication certificate", "challenge=tls-alpn-01")
	if first.NotAfter.Sub(first.NotBefore) > time.Minute {
		t.Fatalf("certificate valid %v: pebble's validity not applied", first.NotAfter.Sub(first.NotBefore))
	}
	// One HTTP/2 connection, verified against pebble's root for the name.
	var p http.Protocols
	p.SetHTTP2(true)
	tr := &http.Transport{TLSClientConfig: tlsFor(peb.Roots, acmeName), Protocols: &p, MaxConnsPerHost: 1,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, a.ls.TCP.Addr().String())
		}}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	base := "https://" + acmeName + ":" + a.port
	var conns int
	check := func(when string) {
		t.Helper()
		resp, body := get(t, c, newRequest(t, http.MethodGet, base+"/"))
		if resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Errorf("%s: site: %s", when, resp.Status)
		}
		req := newRequest(t, http.MethodGet, base+dohQuery("a.example"))
		req.Header.Set("Accept", "application/dns-message")
		if resp, _ := get(t, c, req); resp.StatusCode != http.StatusOK {
			t.Errorf("%s: DoH: %s", when, resp.Status)
		}
		if resp.TLS.PeerCertificates[0].SerialNumber.Cmp(first.SerialNumber) != 0 {
			conns++ // not the connection made with the first certificate
		}
	}
	check("with the first certificate")
	// The tunnel, on a connection of its own.
	tc, err := tls.Dial("tcp", a.ls.TCP.Addr().String(), tlsFor(peb.Roots, acmeName, "http/1.1"))
	if err != nil {
		t.Fatal(err)
	}
	target := relaytest.AnswerTarget(t, 4, []byte("pong"))
	io.WriteString(tc, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\nProxy-Authorization: Basic "+
		base64.StdEncoding.EncodeToString([]byte("alice:s3cret-token"))+"\r\n\r\n")
	tc.Write([]byte("ping"))
	got, _ := io.ReadAll(tc)
	tc.Close()
	if !bytes.HasSuffix(got, []byte("\r\n\r\npong")) {
		t.Errorf("tunnel with the ACME certificate: %q", got)
	}

	// Renewal: a third of its 20 s life before the end, without a restart.
	second := a.waitForCert(t, peb.Roots, acmeName, func(leaf *x509.Certificate) bool {
		return leaf.SerialNumber.Cmp(first.SerialNumber) != 0
	})
	if !second.NotAfter.After(first.NotAfter) {
		t.Errorf("renewed certificate ends %v, the first %v", second.NotAfter, first.NotAfter)
	}
	if time.Now().After(first.NotAfter) {
		t.Errorf("renewed only after the first certificate expired (%v)", first.NotAfter)
	}
	check("after the renewal")
	if conns != 0 {
		t.Errorf("the HTTP/2 connection did not stay up across the renewal")
	}
}

// TestACMEHTTP01: with plain HTTP on, the server answers HTTP-01 there
// (pebble's TLS-ALPN-01 port goes nowhere).
func TestACMEHTTP01(t *testing.T) {
	dnsSrv := testenv.NewUpstream(t, map[string][]string{acmeName: {"127.0.0.1"}})
	ls := listenForACME(t)
	peb := startPebble(t, dnsSrv.Addr, 1, listenerPort(ls.HTTP), time.Hour)
	a := serveACME(t, server.Config{ACME: []string{acmeName}, ACMECA: peb.Dir, ACMECARoot: peb.TLSRoot}, ls)
	a.waitForCert(t, peb.Roots, acmeName, nil)
	waitForLog(t, a.logs, "served key authentication", "challenge=http-01")
}
