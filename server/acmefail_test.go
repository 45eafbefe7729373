package server_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porta443/porta/internal/testenv"
	"github.com/porta443/porta/server"
)

// rateLimitedCA is an ACME CA on loopback that answers every new account
// with 429 rateLimited, as Let's Encrypt does past its limits.
func rateLimitedCA(t *testing.T) (dir, root string, accounts *atomic.Int64) {
	t.Helper()
	cert := testenv.NewCert(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "https://" + ln.Addr().String()
	accounts = new(atomic.Int64)
	var nonce atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/dir", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"newNonce":%q,"newAccount":%q,"newOrder":%q,"revokeCert":%q,"keyChange":%q}`,
			base+"/nonce", base+"/account", base+"/order", base+"/revoke", base+"/key")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Replay-Nonce", fmt.Sprintf("nonce%d", nonce.Add(1)))
		if r.URL.Path == "/nonce" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if r.URL.Path == "/account" {
			accounts.Add(1)
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many new registrations from this address","status":429}`)
	})
	srv := &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert.TLS}}}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return base + "/dir", cert.CertFile, accounts
}

// waitForLog waits until a line of logs has every one of words.
func waitForLog(t *testing.T, logs *testenv.Logs, words ...string) string {
	t.Helper()
	var found string
	waitUntil(t, fmt.Sprintf("a log line with %q", words), func() bool {
		for _, l := range logs.Lines() {
			if all(l, words) {
				found = l
				return true
			}
		}
		return false
	})
	return found
}

func all(s string, words []string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// handshake connects with SNI name (none if ""), trusting nothing, and
// returns the certificate served.
func handshake(addr, name string) (*x509.Certificate, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{ServerName: name, InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

// TestACMEFailures: an unreachable CA, a name that does not point at the
// server and a rate-limit answer are each logged clearly, as an error
// that says what failed and that it will be tried again with backoff (a
// minute later, then longer); meanwhile the server serves what it can:
// the ACME names that work, and its self-signed certificate for other
// names, but never that certificate, or another name's, for an ACME name
// it has no certificate for.
func TestACMEFailures(t *testing.T) {
	t.Run("unreachable CA", func(t *testing.T) {
		dead, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		deadURL := "https://" + dead.Addr().String() + "/dir"
		dead.Close() // nothing listens there: connections are refused
		a := serveACME(t, server.Config{ACME: []string{acmeName}, ACMECA: deadURL, SelfSigned: true}, listenForACME(t))
		line := waitForLog(t, a.logs, "level=ERROR", "will retry", "retrying_in=1m0s", acmeName, "connection refused")
		t.Logf("logged: %s", line)
		a.checkServesWhatItCan(t, acmeName)
	})
	t.Run("name not pointing here", func(t *testing.T) {
		const elsewhere = "elsewhere.porta.test"
		dnsSrv := testenv.NewUpstream(t, map[string][]string{acmeName: {"127.0.0.1"}, elsewhere: {"127.0.0.9"}})
		ls := listenForACME(t)
		peb := startPebble(t, dnsSrv.Addr, listenerPort(ls.TCP), listenerPort(ls.HTTP), time.Hour)
		a := serveACME(t, server.Config{ACME: []string{acmeName, elsewhere}, ACMECA: peb.Dir, ACMECARoot: peb.TLSRoot, SelfSigned: true}, ls)
		line := waitForLog(t, a.logs, "level=ERROR", "will retry", "retrying_in=1m0s", elsewhere)
		t.Logf("logged: %s", line)
		a.waitForCert(t, peb.Roots, acmeName, nil) // the name that points here gets its certificate
		a.checkServesWhatItCan(t, elsewhere)
	})
	t.Run("rate limited", func(t *testing.T) {
		dir, root, accounts := rateLimitedCA(t)
		a := serveACME(t, server.Config{ACME: []string{acmeName}, ACMECA: dir, ACMECARoot: root, SelfSigned: true}, listenForACME(t))
		line := waitForLog(t, a.logs, "level=ERROR", "will retry", "retrying_in=1m0s", "rateLimited")
		t.Logf("logged: %s", line)
		a.checkServesWhatItCan(t, acmeName)
		if n := accounts.Load(); n != 1 {
			t.Errorf("the rate-limited CA was asked %d times, want once before the backoff", n)
		}
	})
}

// checkServesWhatItCan: no certificate for the ACME name without one,
// the self-signed one for any other name and for none.
func (a *acmeServer) checkServesWhatItCan(t *testing.T, acmeName string) {
	t.Helper()
	addr := a.ls.TCP.Addr().String()
	if leaf, err := handshake(addr, acmeName); err == nil {
		t.Errorf("%s was served a certificate for %v (issuer %s)", acmeName, leaf.DNSNames, leaf.Issuer)
	}
	for _, name := range []string{"", "localhost"} {
		leaf, err := handshake(addr, name)
		if err != nil {
			t.Errorf("SNI %q: %v; want the self-signed certificate", name, err)
			continue
		}
		if pin := a.srv.Pin(); pin == "" || leaf.Issuer.String() != leaf.Subject.String() {
			t.Errorf("SNI %q: got %s from %s, want the self-signed certificate", name, leaf.Subject, leaf.Issuer)
		}
	}
}
