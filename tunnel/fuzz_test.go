package tunnel

import (
	"encoding/base64"
	"strings"
	"testing"
)

func FuzzParseProxyAuth(f *testing.F) {
	for _, s := range []string{
		basicAuth("alice", "tok"), "Basic", "Basic ", "basic YTpi", "BASIC   YTpi", "Bearer x",
		"Basic " + base64.StdEncoding.EncodeToString([]byte("a:b:c")), "Basic ====", "Basic YQ==",
		"Basic " + strings.Repeat("QUFB", 200), "", " ", "Basic\tYTpi",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		name, token, ok := parseProxyAuth(v)
		if !ok {
			if name != "" || token != "" {
				t.Fatalf("refused %q but returned %q, %q", v, name, token)
			}
			return
		}
		if len(v) > maxAuthHeader || name == "" || token == "" || strings.Contains(name, ":") {
			t.Fatalf("accepted %q as %q:%q", v, name, token)
		}
		// What was accepted is what an honest client would have sent.
		n2, t2, ok2 := parseProxyAuth(basicAuth(name, token))
		if len(basicAuth(name, token)) <= maxAuthHeader && (!ok2 || n2 != name || t2 != token) {
			t.Fatalf("round trip of %q:%q gave %q:%q %v", name, token, n2, t2, ok2)
		}
	})
}

func FuzzParseUsersFile(f *testing.F) {
	f.Add("alice:tok\n# c\n\nbob:sha256:" + strings.Repeat("ab", 32) + " max-streams=4\n")
	f.Add("x:y max-streams=-1")
	f.Add("a:b\na:c")
	f.Fuzz(func(t *testing.T, s string) {
		es, err := parseUsers([]byte(s))
		if err != nil {
			return
		}
		for _, e := range es {
			if e.name == "" || strings.ContainsAny(e.name, ": \t\n") || e.maxStreams < 0 {
				t.Fatalf("accepted entry %+v from %q", e, s)
			}
		}
	})
}
