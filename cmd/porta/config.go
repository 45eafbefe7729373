package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"
)

// configFlag is --config FILE, which every long-running command takes.
var configFlag = &cli.StringFlag{Name: "config", Usage: "read flags from a YAML `FILE`; each key is a flag's name"}

// applyConfigFile sets, from the YAML file named by --config, every flag
// that the command line did not set.
func applyConfigFile(c *cli.Context) error {
	path := c.String("config")
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return usagef("--config: %w", err)
	}
	entries, err := parseConfig(path, data, configKeys(c.Command))
	if err != nil {
		return usageError{err}
	}
	for _, e := range entries {
		if c.IsSet(e.key) {
			continue // the command line wins
		}
		for _, v := range e.values {
			if err := c.Set(e.key, v); err != nil {
				return usagef("%s:%d: %s: %w", path, e.line, e.key, err)
			}
		}
	}
	return nil
}

// configKeys are the keys a config file for cmd may have: its flags'
// names, each with whether it is repeatable.
func configKeys(cmd *cli.Command) map[string]bool {
	keys := map[string]bool{}
	for _, f := range cmd.Flags {
		_, repeatable := f.(*cli.StringSliceFlag)
		for _, name := range f.Names() {
			if name != "config" && name != "help" {
				keys[name] = repeatable
			}
		}
	}
	return keys
}

// configEntry is one key of a config file with its values as a flag
// would take them on the command line.
type configEntry struct {
	key    string
	line   int
	values []string
}

// parseConfig reads a config file: a YAML mapping from flag names to
// plain values, or lists of them for repeatable flags. Unknown keys and
// wrong shapes are errors naming the file, line and key.
func parseConfig(path string, data []byte, flags map[string]bool) ([]configEntry, error) {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // an empty file, or only comments, sets nothing
		}
		return nil, errors.New(yamlError(path, err))
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: want a mapping of flag names to values", path, root.Line)
	}
	var entries []configEntry
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		repeatable, ok := flags[k.Value]
		if !ok || k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("%s:%d: unknown key %q", path, k.Line, k.Value)
		}
		if seen[k.Value] {
			return nil, fmt.Errorf("%s:%d: %s: given twice", path, k.Line, k.Value)
		}
		seen[k.Value] = true
		values, err := plainValues(v, repeatable)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %w", path, v.Line, k.Value, err)
		}
		entries = append(entries, configEntry{key: k.Value, line: v.Line, values: values})
	}
	return entries, nil
}

func plainValues(v *yaml.Node, repeatable bool) ([]string, error) {
	switch {
	case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
		return nil, errors.New("no value")
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
		return nil, errors.New("takes one value, not a list")
	}
	return nil, errors.New("want a plain value")
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
