package main

import (
	"strings"
	"testing"
)

var testFlags = map[string]bool{"listen": false, "user": true, "self-signed": false}

func TestParseConfig(t *testing.T) {
	entries, err := parseConfig("f.yaml", []byte("listen: ':443'\nuser: [a:b, 'c:d']\nself-signed: true\n"), testFlags)
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, e := range entries {
		got += e.key + "=" + strings.Join(e.values, ",") + ";"
	}
	if want := "listen=:443;user=a:b,c:d;self-signed=true;"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	for _, tc := range []struct{ data, want string }{
		{"listen: a\nlisten: b\n", "f.yaml:2: listen: given twice"},
		{"user: [a, [b]]\n", "f.yaml:1: user: line 1: want a plain value"},
		{"listen:\n", "f.yaml:1: listen: no value"},
		{"[1]: x\n", `f.yaml:1: unknown key ""`},
		{"\t\tlisten: x", "f.yaml: found character that cannot start any token"},
	} {
		if _, err := parseConfig("f.yaml", []byte(tc.data), testFlags); err == nil || err.Error() != tc.want {
			t.Errorf("%q: %v, want %q", tc.data, err, tc.want)
		}
	}
	if entries, err := parseConfig("f.yaml", []byte("  \n# only a comment\n"), testFlags); err != nil || len(entries) != 0 {
		t.Errorf("empty file: %v %v", entries, err)
	}
}

// FuzzParseConfig: any file gives entries for known flags only, or an
// error that names the file; never a panic.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{"listen: ':443'\n", "user: [a, b]\n", "a: {b: c}", "- x", "&a x: *a", "listen: !!binary aGk="} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseConfig("f.yaml", data, testFlags)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		for _, e := range entries {
			repeatable, ok := testFlags[e.key]
			if !ok || (!repeatable && len(e.values) != 1) {
				t.Fatalf("entry %+v", e)
			}
		}
	})
}
