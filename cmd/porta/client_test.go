package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/porta443/porta/client"
	"github.com/urfave/cli/v2"
)

// parseClient runs `porta client args...` as far as its client.Config.
func parseClient(t *testing.T, args ...string) client.Config {
	t.Helper()
	var cfg client.Config
	cmd := clientCommand()
	cmd.Action = func(c *cli.Context) error {
		if err := applyConfigFile(c); err != nil {
			return err
		}
		var err error
		cfg, err = clientConfig(c)
		return err
	}
	if err := (&cli.App{Commands: []*cli.Command{cmd}}).Run(append([]string{"porta", "client"}, args...)); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// --std-http2 and its config key pick net/http's HTTP/2 client.
func TestClientStdHTTP2(t *testing.T) {
	if parseClient(t, "--server", "https://u:t@example.test").StdHTTP2 {
		t.Error("StdHTTP2 set without the flag")
	}
	if !parseClient(t, "--server", "https://u:t@example.test", "--std-http2").StdHTTP2 {
		t.Error("--std-http2 did not set StdHTTP2")
	}
	config := filepath.Join(t.TempDir(), "client.yaml")
	os.WriteFile(config, []byte("server: [https://u:t@example.test]\nstd-http2: true\n"), 0o644)
	if !parseClient(t, "--config", config).StdHTTP2 {
		t.Error("std-http2: true in the config file did not set StdHTTP2")
	}
}
