package doh

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/porta443/porta/internal/testenv"
)

// TestRealClients asks the handler with the DoH clients people use.
func TestRealClients(t *testing.T) {
	up := newTestUpstream(t)
	r := newTestResolver(t, ResolverConfig{Upstreams: []string{"udp://" + up.Addr}})
	srv := serveTest(t, &Handler{Resolver: r})
	host, port, _ := net.SplitHostPort(srv.TCPAddr)
	url := "https://localhost:" + port + "/dns-query"
	wire := packQuery(t, newQuery("curl.example", dns.TypeA))

	run := func(t *testing.T, name string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
		}
		return string(out)
	}
	wantA := func(t *testing.T, out, name string) {
		t.Helper()
		if !strings.Contains(out, "NOERROR") || !strings.Contains(out, name+".") || !strings.Contains(out, "192.0.2.1") {
			t.Fatalf("no A record for %s in:\n%s", name, out)
		}
	}
	t.Run("dig +https", func(t *testing.T) {
		dig := testenv.LookPath(t, "dig", "bind9-dnsutils")
		out := run(t, dig, "@"+host, "-p", port, "+https", "+tls-ca="+srv.Cert.CertFile, "+tls-hostname=localhost", "+tries=1", "+time=10", "dig-post.example", "A")
		wantA(t, out, "dig-post.example")
	})
	t.Run("dig +https-get", func(t *testing.T) {
		dig := testenv.LookPath(t, "dig", "bind9-dnsutils")
		out := run(t, dig, "@"+host, "-p", port, "+https-get", "+tls-ca="+srv.Cert.CertFile, "+tls-hostname=localhost", "+tries=1", "+time=10", "dig-get.example", "A")
		wantA(t, out, "dig-get.example")
	})
	t.Run("dig +https nxdomain", func(t *testing.T) {
		dig := testenv.LookPath(t, "dig", "bind9-dnsutils")
		out := run(t, dig, "@"+host, "-p", port, "+https", "+tls-ca="+srv.Cert.CertFile, "+tls-hostname=localhost", "+tries=1", "+time=10", "nx.example", "A")
		if !strings.Contains(out, "NXDOMAIN") {
			t.Fatalf("want NXDOMAIN:\n%s", out)
		}
	})
	t.Run("kdig +https", func(t *testing.T) {
		kdig := testenv.LookPath(t, "kdig", "knot-dnsutils")
		out := run(t, kdig, "@"+host, "-p", port, "+https=/dns-query", "+tls-ca="+srv.Cert.CertFile, "+tls-hostname=localhost", "+timeout=10", "+retry=0", "kdig.example", "A")
		wantA(t, out, "kdig.example")
	})
	t.Run("kdig +https-get padded", func(t *testing.T) {
		kdig := testenv.LookPath(t, "kdig", "knot-dnsutils")
		out := run(t, kdig, "@"+host, "-p", port, "+https-get", "+https=/dns-query", "+tls-ca="+srv.Cert.CertFile, "+tls-hostname=localhost", "+padding=64", "+timeout=10", "+retry=0", "kdig-get.example", "A")
		wantA(t, out, "kdig-get.example")
		if !strings.Contains(out, "PADDING") {
			t.Fatalf("padded query, answer without padding:\n%s", out)
		}
	})
	curl := func(t *testing.T, args ...string) []byte {
		t.Helper()
		c := testenv.LookPath(t, "curl", "curl")
		base := []string{"-sS", "--fail", "--max-time", "20", "--cacert", srv.Cert.CertFile, "-H", "Accept: application/dns-message"}
		return []byte(run(t, c, append(base, args...)...))
	}
	checkWire := func(t *testing.T, body []byte) {
		t.Helper()
		m := new(dns.Msg)
		if err := m.Unpack(body); err != nil {
			t.Fatalf("curl got no DNS message: %v", err)
		}
		if len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
			t.Fatalf("curl answer: %v", m)
		}
	}
	t.Run("curl GET", func(t *testing.T) {
		checkWire(t, curl(t, "--http2", url+"?dns="+b64(wire)))
	})
	t.Run("curl POST", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "query")
		if err := os.WriteFile(f, wire, 0o600); err != nil {
			t.Fatal(err)
		}
		checkWire(t, curl(t, "--http1.1", "-H", "Content-Type: application/dns-message", "--data-binary", "@"+f, url))
	})
}
