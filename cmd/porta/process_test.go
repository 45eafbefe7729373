package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/porta443/porta/internal/testenv"
)

// servingRE finds the address in porta's "serving" log line, text or JSON:
// the server's, or the SOCKS proxy's of a client.
var servingRE = regexp.MustCompile(`serving"?[ ,]"?(?:addr|socks)"?[=:]"?([^"\s]+)`)

// proc is `porta` running in its own process, as a user runs it.
type proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	lines  chan string
	exited chan error
}

// startPorta runs porta with args and waits until its log says it serves;
// it returns the address. A server gets a loopback upstream unless args
// name one. The process is killed when the test ends.
func startPorta(t *testing.T, args ...string) (*proc, string) {
	t.Helper()
	if args[0] == "server" && !slices.Contains(args, "--upstream") {
		args = append(args, "--upstream", testenv.NewUpstream(t, nil).URL())
	}
	p := &proc{cmd: exec.Command("porta", args...), lines: make(chan string, 1000), exited: make(chan error, 1)}
	pipe, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		p.exited <- p.cmd.Wait()
		close(p.lines)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		for range p.lines {
		}
	})
	addr := p.waitFor(t, servingRE)
	return p, addr
}

// waitFor reads log lines until one matches re, and returns its first group.
func (p *proc) waitFor(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("porta exited before %q; its log:\n%s", re, p.log())
			}
			if m := re.FindStringSubmatch(line); m != nil {
				return m[len(m)-1]
			}
		case <-timeout:
			t.Fatalf("no %q in 20s; log:\n%s", re, p.log())
		}
	}
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

func insecureGet(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestSIGTERMExitsZeroWithin5s(t *testing.T) {
	p, addr := startPorta(t, "server", "--listen", "127.0.0.1:0", "--self-signed", "--state-dir", t.TempDir())
	if !strings.Contains(p.log(), `pin="sha256//`) {
		t.Fatalf("no pin printed:\n%s", p.log())
	}
	insecureGet(t, "https://"+addr+"/")
	// A connection left open must not hold the exit up.
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	begun := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("exit: %v; log:\n%s", err, p.log())
		}
		if d := time.Since(begun); d > 5*time.Second {
			t.Fatalf("took %v to exit", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10s after SIGTERM")
	}
}

// TestConfigFile: a YAML file sets the flags; the command line wins over it.
func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	site := filepath.Join(dir, "site")
	os.Mkdir(site, 0o755)
	os.WriteFile(filepath.Join(site, "index.html"), []byte("from the config's site"), 0o644)
	config := filepath.Join(dir, "porta.yaml")
	os.WriteFile(config, []byte("listen: 256.0.0.1:1\nself-signed: true\nstate-dir: "+dir+"\nsite: "+site+"\nlog-format: json\n"), 0o644)

	_, addr := startPorta(t, "server", "--config", config, "--listen", "127.0.0.1:0")
	if got := insecureGet(t, "https://"+addr+"/"); got != "from the config's site" {
		t.Fatalf("got %q", got)
	}
}

func TestSIGHUPReloadsCertificate(t *testing.T) {
	first, next := testenv.NewCert(t), testenv.NewCert(t)
	p, addr := startPorta(t, "server", "--listen", "127.0.0.1:0", "--cert", first.CertFile, "--key", first.KeyFile)
	if c, err := tls.Dial("tcp", addr, first.ClientTLS()); err != nil {
		t.Fatal(err)
	} else {
		c.Close()
	}
	for _, f := range [][2]string{{next.CertFile, first.CertFile}, {next.KeyFile, first.KeyFile}} {
		b, _ := os.ReadFile(f[0])
		os.WriteFile(f[1], b, 0o600)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitFor(t, regexp.MustCompile(`msg=(reloaded)`))
	c, err := tls.Dial("tcp", addr, next.ClientTLS())
	if err != nil {
		t.Fatalf("after SIGHUP: %v", err)
	}
	c.Close()
}

// TestIdleConnectionsDoNotStarveNewClients: 10,000 TCP connections that
// send nothing do not stop a new client from being served.
func TestIdleConnectionsDoNotStarveNewClients(t *testing.T) {
	const idle = 10_000
	_, addr := startPorta(t, "server", "--listen", "127.0.0.1:0", "--self-signed", "--state-dir", t.TempDir())
	conns := make([]net.Conn, 0, idle)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for len(conns) < idle {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("after %d idle connections: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	if got := insecureGet(t, "https://"+addr+"/"); !strings.Contains(got, "<html") {
		t.Fatalf("new client with %d idle connections open: %q", idle, got)
	}
	// They were all still open while it was served: none had been refused.
	open := 0
	for _, c := range conns[len(conns)-100:] {
		c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil && os.IsTimeout(err) {
			open++
		}
	}
	if open == 0 {
		t.Fatal("the idle connections were already closed: the test proved nothing")
	}
}

// With --std-http2 and no GODEBUG=http2xconnect=1 in its environment, the
// server says that net/http's HTTP/2 server will not take CONNECT-UDP.
func TestStdHTTP2WarnsOfNoUDPWithoutGODEBUG(t *testing.T) {
	if stdHTTP2TakesUDP() {
		t.Skip("GODEBUG has http2xconnect=1 here")
	}
	p, _ := startPorta(t, "server", "--listen", "127.0.0.1:0", "--self-signed", "--state-dir", t.TempDir(), "--std-http2", "--user", "a:b")
	if log := p.log(); !strings.Contains(log, "GODEBUG=http2xconnect=1") {
		t.Errorf("no word of GODEBUG=http2xconnect=1 in the log:\n%s", log)
	}
}
