package main

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/porta443/porta/internal/testenv"
)

// TestDemo runs `porta demo` as a user does, runs every command it
// prints, and stops it with Ctrl-C.
func TestDemo(t *testing.T) {
	testenv.LookPath(t, "dig", "bind9-dnsutils")
	testenv.LookPath(t, "curl", "curl")
	up := testenv.NewUpstream(t, map[string][]string{"example.com": {"192.0.2.1"}})
	cmd := exec.Command("porta", "demo", "--listen", "127.0.0.1:0", "--dns", "127.0.0.1:0",
		"--socks", "127.0.0.1:0", "--http-proxy", "127.0.0.1:0", "--upstream", up.URL())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })

	var tries []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "dig ") || strings.HasPrefix(line, "curl ") {
			tries = append(tries, line)
		}
		if line == "Ctrl-C stops both." {
			break
		}
	}
	if len(tries) < 6 {
		t.Fatalf("the demo printed %d commands to try: %q", len(tries), tries)
	}
	for _, line := range tries {
		args := strings.Fields(line)
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		text := string(out)
		switch {
		case err != nil:
			t.Errorf("%s: %v\n%s", line, err, text)
		case strings.Contains(line, "porta.test") && !strings.Contains(text, "127.0.0.1"):
			t.Errorf("%s: no local record in\n%s", line, text)
		case strings.Contains(line, "example.com") && !strings.Contains(text, "192.0.2.1"):
			t.Errorf("%s: no answer from the upstream in\n%s", line, text)
		case args[0] == "curl" && !strings.Contains(text, "<html"):
			t.Errorf("%s: no page in\n%s", line, text)
		}
	}

	exited := make(chan error, 1)
	go func() {
		for sc.Scan() {
		}
		exited <- cmd.Wait()
	}()
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("demo after Ctrl-C: %v", err)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("demo still running 8s after Ctrl-C")
	}
}
