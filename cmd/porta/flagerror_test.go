package main

import (
	"errors"
	"testing"

	"github.com/porta443/porta/client"
	"github.com/porta443/porta/server"
	"github.com/urfave/cli/v2"
)

// TestFlagErrorNamesRealFlags: every flag a library field is worded as is
// a flag of its command, so that a typo cannot name a flag nobody has.
func TestFlagErrorNamesRealFlags(t *testing.T) {
	for _, tc := range []struct {
		cmd   *cli.Command
		flags map[string]string
	}{
		{serverCommand(), serverFlags},
		{serverCommand(), serverListenFlags},
		{clientCommand(), clientFlags},
		{clientCommand(), clientListenFlags},
	} {
		have := map[string]bool{}
		for _, f := range tc.cmd.Flags {
			for _, n := range f.Names() {
				have[n] = true
			}
		}
		for field, flag := range tc.flags {
			if !have[flag] {
				t.Errorf("%s: field %s is worded as --%s, which it does not have", tc.cmd.Name, field, flag)
			}
		}
	}
}

// TestFlagError: the typed errors are worded in flags, and still wrap
// what they wrapped; Reload's joined errors are worded one by one.
func TestFlagError(t *testing.T) {
	cause := errors.New("cause")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&server.ConfigError{Field: "Upstreams", Err: cause}, "--upstream: cause"},
		{&server.ConfigError{Field: "DoHPath", Value: "x", Err: cause}, `--doh-path "x": cause`},
		{&server.FieldsError{Format: "%s and %s: give one", Fields: []string{"SiteDir", "SiteProxy"}}, "--site and --site-proxy: give one"},
		{&server.FieldsError{Format: "%s / %s", Fields: []string{"CertFile", "KeyFile"}, Values: []string{"c.pem", "k.pem"}, Err: cause}, "--cert c.pem / --key k.pem: cause"},
		{&server.ListenError{Listener: "HTTP", Err: cause}, "--http-listen: cause"},
		{&client.ConfigError{Field: "Records", Value: "a=b", Err: cause}, `--record "a=b": cause`},
		{&client.ListenError{Listener: "SOCKS", Err: cause}, "--socks: cause"},
		{cause, "cause"},
	} {
		got := flagError(tc.err)
		if got.Error() != tc.want {
			t.Errorf("flagError(%q) = %q, want %q", tc.err, got, tc.want)
		}
		if errors.Is(tc.err, cause) && !errors.Is(got, cause) {
			t.Errorf("flagError(%q) no longer wraps its cause", tc.err)
		}
	}
	joined := joinedFlagErrors(errors.Join(&server.ConfigError{Field: "CertFile", Err: cause}, &server.ConfigError{Field: "UsersFile", Err: cause}))
	if want := "--cert: cause\n--users: cause"; joined.Error() != want {
		t.Errorf("joined: %q, want %q", joined, want)
	}
}
