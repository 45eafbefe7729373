package main

import (
	"os"
	"os/exec"
	"testing"

	"github.com/porta443/porta/internal/testenv"

	"github.com/urfave/cli/v2"
)

// TestExampleConfigsParse: the config files in examples/ use only keys
// that the commands have, in the shapes they take.
func TestExampleConfigsParse(t *testing.T) {
	for file, cmd := range map[string]*cli.Command{
		"../../examples/server.yaml":               serverCommand(),
		"../../examples/client.yaml":               clientCommand(),
		"../../examples/load-balancer/server.yaml": serverCommand(),
		"../../examples/load-balancer/client.yaml": clientCommand(),
	} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		entries, err := parseConfig(file, data, configKeys(cmd))
		if err != nil || len(entries) == 0 {
			t.Errorf("%s: %d entries, %v", file, len(entries), err)
		}
	}
}

// TestExampleHAProxyConfig: the load balancer guide's haproxy.cfg is one
// that Debian's haproxy takes.
func TestExampleHAProxyConfig(t *testing.T) {
	haproxy := testenv.LookPath(t, "haproxy", "haproxy")
	if out, err := exec.Command(haproxy, "-c", "-f", "../../examples/load-balancer/haproxy.cfg").CombinedOutput(); err != nil {
		t.Errorf("haproxy -c: %v\n%s", err, out)
	}
}
