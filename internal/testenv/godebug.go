package testenv

import (
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// RunWithGODEBUG makes sure the test binary runs with setting (such as
// "http2xconnect=1") in GODEBUG: if it is not there, it runs the binary
// again with it, with the same arguments, and exits with that run's
// status; else it returns. Call it first in TestMain. net/http reads
// http2xconnect from the environment in its init, which a //go:debug line
// does not reach (the go command refuses the key), so this is the only way
// to have a stock net/http server offer extended CONNECT to compare with.
func RunWithGODEBUG(setting string) {
	cur := os.Getenv("GODEBUG")
	if slices.Contains(strings.Split(cur, ","), setting) {
		return
	}
	if cur != "" {
		setting = cur + "," + setting
	}
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), "GODEBUG="+setting)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		os.Exit(ee.ExitCode())
	}
	if err != nil {
		os.Stderr.WriteString("testenv: running the tests with GODEBUG=" + setting + ": " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Exit(0)
}
