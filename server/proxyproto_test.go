package server_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/porta443/porta/internal/relay/relaytest"
	"github.com/porta443/porta/internal/testenv"
	"github.com/porta443/porta/server"
)

// Loopback addresses the PROXY protocol tests tell apart: the load
// balancer's (trusted), a client's behind it, and everyone else.
const (
	lbAddr     = "127.0.0.2"
	clientAddr = "127.0.0.3"
)

// startHAProxy runs Debian's haproxy in TCP mode in front of the server
// at backend, connecting from lbAddr: one frontend that sends PROXY
// protocol v1 headers (send-proxy) and one that sends v2
// (send-proxy-v2). It returns their addresses by version.
func startHAProxy(t *testing.T, backend string) map[string]string {
	t.Helper()
	haproxy := testenv.LookPath(t, "haproxy", "haproxy")
	fronts := map[string]string{}
	var files []*os.File
	cfg := "global\n\tmaxconn 200\ndefaults\n\tmode tcp\n\ttimeout connect 5s\n\ttimeout client 30s\n\ttimeout server 30s\n"
	for i, v := range []string{"v1", "v2"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f, err := ln.(*net.TCPListener).File() // haproxy inherits the listening socket itself
		ln.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		files = append(files, f)
		fronts[v] = ln.Addr().String()
		send := map[string]string{"v1": "send-proxy", "v2": "send-proxy-v2"}[v]
		cfg += fmt.Sprintf("frontend %s\n\tbind fd@%d\n\tdefault_backend %s\nbackend %s\n\tserver porta %s %s source %s\n",
			v, 3+i, v, v, backend, send, lbAddr)
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(haproxy, "-db", "-f", path)
	cmd.ExtraFiles = files
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy said:\n%s", out.String())
		}
	})
	return fronts
}

// clientFrom is an HTTP/2 client for the server's certificate that dials
// addr, whatever the URL says, from the local address from.
func clientFrom(t *testing.T, r *running, from, addr string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	var p http.Protocols
	p.SetHTTP2(true)
	tr := &http.Transport{
		TLSClientConfig: r.cert.ClientTLS(),
		Protocols:       &p,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// handshakeFrom dials addr from the local address from, writes pre, and
// tries a TLS handshake.
func handshakeFrom(r *running, from, addr, pre string) error {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(c, pre); err != nil {
		return err
	}
	tc := tls.Client(c, r.cert.ClientTLS("h2"))
	if err := tc.Handshake(); err != nil {
		return err
	}
	// TLS 1.3: a refused connection may show only at the first read.
	tc.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
	_, err = tc.Read(make([]byte, 1))
	return err
}

// TestPROXYProtocolBehindHAProxy: behind haproxy's send-proxy (v1) and
// send-proxy-v2, the server sees each client's own address (the site
// backend gets it in X-Forwarded-For) and tunnels as ever; a connection
// that does not come from --proxy-from is served as it comes but may not
// send a header, and one from --proxy-from must.
func TestPROXYProtocolBehindHAProxy(t *testing.T) {
	eachHTTP2(t, func(t *testing.T) {
		r, maddr := startWithMetrics(t, server.Config{
			SiteProxy:     backend(t, nil),
			ProxyProtocol: true,
			ProxyFrom:     []string{lbAddr + "/32"},
			Users:         []string{"alice:s3cret-token"},
			AllowPrivate:  true,
		})
		url := "https://localhost:" + portOf(r.addr) + "/page"
		fronts := startHAProxy(t, r.addr)
		for _, v := range []string{"v1", "v2"} {
			c := clientFrom(t, r, clientAddr, fronts[v])
			_, body := get(t, c, newRequest(t, http.MethodGet, url))
			if !strings.Contains(string(body), "xff="+clientAddr+" ") {
				t.Errorf("%s: the site saw %q; want X-Forwarded-For %s", v, body, clientAddr)
			}
		}
		// The tunnel, through haproxy.
		up, answer := []byte("ping"), []byte("pong")
		target := relaytest.AnswerTarget(t, len(up), answer)
		lb := *r
		lb.addr = fronts["v2"]
		auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3cret-token"))
		if down := connectOnce(t, &lb, auth, target, up); string(down) != "pong" {
			t.Errorf("tunnel through haproxy: %q", down)
		}

		// Straight to the server from elsewhere: served, with its own address.
		_, body := get(t, clientFrom(t, r, "127.0.0.1", r.addr), newRequest(t, http.MethodGet, url))
		if !strings.Contains(string(body), "xff=127.0.0.1 ") {
			t.Errorf("direct: the site saw %q", body)
		}
		// From elsewhere with a header of its own: refused.
		spoof := "PROXY TCP4 203.0.113.9 127.0.0.1 5555 443\r\n"
		if err := handshakeFrom(r, "127.0.0.1", r.addr, spoof); err == nil {
			t.Error("a PROXY header from outside --proxy-from was accepted")
		}
		// From the load balancer's address without a header: refused.
		if err := handshakeFrom(r, lbAddr, r.addr, ""); err == nil {
			t.Error("a connection from --proxy-from without a header was served")
		}
		// Both refusals, and nothing else, count as handshake errors; the
		// spoofed address never reaches the site.
		waitUntil(t, "the refused connections to be counted", func() bool {
			return testenv.Scrape(t, maddr).Value("porta_tls_handshake_errors_total") == 2
		})
	})
}
