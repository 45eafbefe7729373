package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/porta443/porta/internal/relay/relaytest"
)

// TestECHFlags: porta server --ech-public-name serves ECH with the keys
// porta ech-config prints from the same --state-dir, and porta client
// with that list (the config key ech) and the server's pin connects with
// it, its tunnels working.
func TestECHFlags(t *testing.T) {
	state := t.TempDir()
	out, err := exec.Command("porta", "ech-config", "--ech-public-name", "cdn.example.test", "--state-dir", state).Output()
	if err != nil {
		t.Fatalf("porta ech-config: %v", err)
	}
	list := strings.TrimSpace(string(out))
	srv, addr := startPorta(t, "server", "--listen", "127.0.0.1:0", "--self-signed", "--state-dir", state,
		"--user", "me:a-token", "--allow-private", "--ech-public-name", "cdn.example.test")
	pin := regexp.MustCompile(`pin="?(sha256//[^"\s]+)`).FindStringSubmatch(srv.log())
	if pin == nil || !strings.Contains(srv.log(), list) {
		t.Fatalf("the server's log has no pin, or not the list porta ech-config printed (%s):\n%s", list, srv.log())
	}
	config := filepath.Join(t.TempDir(), "client.yaml")
	os.WriteFile(config, []byte("server: [https://me:a-token@"+addr+"]\npin: "+pin[1]+"\nech: "+list+"\ndns: \"\"\nsocks: 127.0.0.1:0\n"), 0o644)
	cl, socks := startPorta(t, "client", "--config", config)
	target, sum := relaytest.FileServer(t, 1<<16)
	got, _, err := relaytest.Curl(t, "--max-time", "10", "--socks5-hostname", socks, "http://"+target+"/file")
	if err != nil || got != sum {
		t.Fatalf("through the client: %v\n%s", err, cl.log())
	}
	cl.waitFor(t, regexp.MustCompile(`msg="(encrypted client hello accepted)"`))
}
