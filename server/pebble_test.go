package server_test

import (
	"bufio"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/porta443/porta/internal/testenv"
)

// pebble is Debian's pebble, an ACME CA for tests, on loopback.
type pebble struct {
	Dir     string         // the ACME directory URL
	TLSRoot string         // PEM file that pebble's own HTTPS certificate is trusted by
	Roots   *x509.CertPool // the CA's root, which issued certificates chain to
}

// startPebble runs pebble with validations against tlsPort (TLS-ALPN-01)
// and httpPort (HTTP-01) on the address that dnsAddr, a loopback DNS
// server, gives each name, and certificates valid for validity.
// PEBBLE_VA_NOSLEEP=1 and no bad nonces, for speed.
func startPebble(t *testing.T, dnsAddr string, tlsPort, httpPort int, validity time.Duration) *pebble {
	t.Helper()
	bin := testenv.LookPath(t, "pebble", "pebble")
	cert := testenv.NewCert(t) // pebble's own HTTPS, for 127.0.0.1
	cfg := fmt.Sprintf(`{"pebble": {"listenAddress": "127.0.0.1:0", "managementListenAddress": "127.0.0.1:0",
		"certificate": %q, "privateKey": %q, "httpPort": %d, "tlsPort": %d, "ocspResponderURL": "",
		"externalAccountBindingRequired": false, "certificateValidityPeriod": %d}}`,
		cert.CertFile, cert.KeyFile, httpPort, tlsPort, int(validity/time.Second))
	path := filepath.Join(t.TempDir(), "pebble.json")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", path, "-dnsserver", dnsAddr)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	logged := make(chan struct{})
	ready := make(chan struct{})
	go func() {
		defer close(logged)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "ACME directory available") {
				close(ready)
			}
		}
		io.Copy(io.Discard, out)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-logged
		cmd.Wait()
		if t.Failed() {
			t.Logf("pebble said:\n%s", log.String())
		}
	})
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		t.Fatal("pebble did not start")
	}
	// pebble listens on ports of its own choosing and does not say which:
	// find its listening sockets, and tell the ACME one by its /dir.
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cert.ClientTLS()}}
	t.Cleanup(c.CloseIdleConnections)
	p := &pebble{TLSRoot: cert.CertFile}
	for deadline := time.Now().Add(20 * time.Second); p.Dir == "" || p.Roots == nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("pebble's ports not found: %+v", p)
		}
		p.find(t, c, listeningPorts(t, cmd.Process.Pid))
	}
	return p
}

// find tells pebble's ACME port from its management port.
func (p *pebble) find(t *testing.T, c *http.Client, ports []int) {
	for _, port := range ports {
		base := "https://127.0.0.1:" + strconv.Itoa(port)
		if resp, err := c.Get(base + "/dir"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				p.Dir = base + "/dir"
				continue
			}
		}
		if resp, err := c.Get(base + "/roots/0"); err == nil {
			pem, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				p.Roots = x509.NewCertPool()
				if !p.Roots.AppendCertsFromPEM(pem) {
					t.Fatalf("pebble's /roots/0: %q", pem)
				}
			}
		}
	}
}

// listeningPorts are the TCP ports process pid listens on, from /proc.
func listeningPorts(t *testing.T, pid int) []int {
	t.Helper()
	inodes := map[string]bool{}
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var ports []int
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] { // 0A: LISTEN
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil {
				ports = append(ports, int(p))
			}
		}
	}
	return ports
}
