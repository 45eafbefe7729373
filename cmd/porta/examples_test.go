package main

import (
	"os"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestExampleConfigsParse: the config files in examples/ use only keys
// that the commands have, in the shapes they take.
func TestExampleConfigsParse(t *testing.T) {
	for file, cmd := range map[string]*cli.Command{
		"../../examples/server.yaml": serverCommand(),
		"../../examples/client.yaml": clientCommand(),
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
