package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"
)

// configFlag is --config FILE, which every long-running command takes.
var configFlag = &cli.StringFlag{Name: "config", Usage: "read flags from a YAML `FILE`; each key is a flag's name"}

// applyConfigFile sets, from the YAML file named by --config, every flag
// that the command line did not set. The file is a mapping from flag names
// to values; a repeatable flag takes a list. Unknown keys, wrong shapes and
// bad values are errors naming the file, line and key.
func applyConfigFile(c *cli.Context) error {
	path := c.String("config")
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return usagef("--config: %w", err)
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if len(bytes.TrimSpace(data)) == 0 {
			return nil // an empty file sets nothing
		}
		return usagef("%s", yamlError(path, err))
	}
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return usagef("%s:%d: want a mapping of flag names to values", path, root.Line)
	}
	flags := map[string]cli.Flag{}
	for _, f := range c.Command.Flags {
		for _, name := range f.Names() {
			flags[name] = f
		}
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		key := k.Value
		f, ok := flags[key]
		if !ok || key == "config" || key == "help" {
			return usagef("%s:%d: unknown key %q", path, k.Line, key)
		}
		if c.IsSet(key) {
			continue // the command line wins
		}
		values, err := scalarValues(v, isRepeatable(f))
		if err != nil {
			return usagef("%s:%d: %s: %w", path, v.Line, key, err)
		}
		for _, val := range values {
			if err := c.Set(key, val); err != nil {
				return usagef("%s:%d: %s: %w", path, v.Line, key, err)
			}
		}
	}
	return nil
}

func scalarValues(v *yaml.Node, repeatable bool) ([]string, error) {
	switch {
	case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
		return nil, fmt.Errorf("no value")
	case v.Kind == yaml.ScalarNode:
		return []string{v.Value}, nil
	case v.Kind == yaml.SequenceNode && repeatable:
		var out []string
		for _, item := range v.Content {
			if item.Kind != yaml.ScalarNode || item.Tag == "!!null" {
				return nil, fmt.Errorf("line %d: want a plain value", item.Line)
			}
			out = append(out, item.Value)
		}
		return out, nil
	case v.Kind == yaml.SequenceNode:
		return nil, fmt.Errorf("takes one value, not a list")
	}
	return nil, fmt.Errorf("want a plain value")
}

func isRepeatable(f cli.Flag) bool {
	_, ok := f.(*cli.StringSliceFlag)
	return ok
}

// yamlError turns yaml's "yaml: line 3: did not find expected key" into
// "FILE:3: did not find expected key", the form every other error takes.
func yamlError(path string, err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if line, text, ok := strings.Cut(rest, ": "); ok {
			return path + ":" + line + ": " + text
		}
	}
	return path + ": " + msg
}
