package tunnel

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNewToken(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tok := NewToken()
		if len(tok) != 43 || strings.ContainsAny(tok, ":=+/ ") || seen[tok] {
			t.Fatalf("token %q: want 43 URL-safe characters, all different", tok)
		}
		seen[tok] = true
	}
}

func TestUsersFileAndReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users")
	bobSum := sha256.Sum256([]byte("bob-token"))
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("# users\n\nbob:sha256:" + hex.EncodeToString(bobSum[:]) + " max-streams=3\ncarol:carol-token\n")
	u, err := NewUsers(UsersConfig{Users: []string{"alice:a-token"}, File: path})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, token string
		ok          bool
	}{
		{"alice", "a-token", true}, {"bob", "bob-token", true}, {"carol", "carol-token", true},
		{"bob", "sha256:" + hex.EncodeToString(bobSum[:]), false}, {"alice", "a-token ", false},
		{"dave", "a-token", false}, {"", "", false},
	} {
		if _, ok := u.authenticate(tc.name, tc.token); ok != tc.ok {
			t.Errorf("authenticate(%q, %q) = %v, want %v", tc.name, tc.token, ok, tc.ok)
		}
	}
	bob, _ := u.authenticate("bob", "bob-token")
	if bob.maxStreams != 3 {
		t.Errorf("bob's limit = %d, want 3", bob.maxStreams)
	}
	bob.acquire()
	bob.c.bytesUp.Add(7)

	// Reload: carol goes, dave comes, bob keeps his counters; a bad file
	// leaves everything as it was.
	write("bob:bob-token\ndave:dave-token\n")
	if err := u.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := u.authenticate("carol", "carol-token"); ok {
		t.Error("carol still valid after reload")
	}
	if _, ok := u.authenticate("dave", "dave-token"); !ok {
		t.Error("dave not valid after reload")
	}
	st := u.Stats()
	if len(st) != 3 || st[1].Name != "bob" || st[1].Streams != 1 || st[1].BytesUp != 7 {
		t.Errorf("stats after reload = %+v", st)
	}
	write("this line is bad\n")
	if err := u.Reload(); err == nil || strings.Contains(err.Error(), "bob-token") {
		t.Errorf("reload of a bad file: %v", err)
	}
	if _, ok := u.authenticate("dave", "dave-token"); !ok {
		t.Error("a failed reload dropped the previous users")
	}
	write("alice:other\n")
	if err := u.Reload(); err == nil {
		t.Error("a user defined twice was accepted")
	}
}

func TestUsersBadInput(t *testing.T) {
	for _, s := range []string{"alice", ":tok", "alice:", "al ice:tok"} {
		if _, err := NewUsers(UsersConfig{Users: []string{s}}); err == nil {
			t.Errorf("--user %q accepted", s)
		}
	}
	for _, s := range []string{"bob:sha256:zz", "bob:tok max-streams=0", "bob:tok color=red", "bob"} {
		if err := ParseUsersFile([]byte(s)); err == nil {
			t.Errorf("users file %q accepted", s)
		}
	}
	if _, err := NewUsers(UsersConfig{File: filepath.Join(t.TempDir(), "missing")}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	// On the command line a token starting with "sha256:" is a token.
	u := testUsers(t, "eve:sha256:abc")
	if _, ok := u.authenticate("eve", "sha256:abc"); !ok {
		t.Error("--user token with a sha256: prefix was not taken literally")
	}
}

// TestUserStreamLimit: a user at the limit gets 429 with Proxy-Status;
// when a stream ends, there is room again.
func TestUserStreamLimit(t *testing.T) {
	run(t, func(t *testing.T, mode string) {
		ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true, Users: testUsers(t, testUser+":"+testToken)})
		ts.h.cfg.Users.cfg.MaxStreams = 2
		if err := ts.h.cfg.Users.Reload(); err != nil {
			t.Fatal(err)
		}
		target := echoTarget(t)
		var open []halfCloser
		for range 2 {
			c := dialVia(t, ts, mode, target)
			c.Write([]byte("x"))
			if _, err := c.Read(make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			open = append(open, c)
		}
		refused(t, tryTunnel(t, ts, mode, target), 429, "connection_limit_reached")
		open[0].Close()
		waitFor(t, "a stream to end", 10*time.Second, func() bool { return ts.h.Active() == 1 })
		if err := tryTunnel(t, ts, mode, target); err != nil {
			t.Fatalf("after a stream ended: %v", err)
		}
		// Used to the end: a connection nothing refers to any more is
		// closed by its finalizer, which ended the second tunnel early
		// now and then (Active went to 0, not 1).
		open[1].Close()
	})
}

func TestUsersConcurrentAuth(t *testing.T) {
	u := testUsers(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if _, ok := u.authenticate(testUser, testToken); !ok {
					t.Error("valid user refused")
					return
				}
				u.Reload()
			}
		}()
	}
	wg.Wait()
}
