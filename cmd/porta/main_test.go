package main

import (
	"errors"
	"os/exec"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"go.uber.org/goleak"
)

// TestMain lets the test binary run as `porta` (testscript puts a copy on
// PATH), so scripts and tests run the real command in its own process.
func TestMain(m *testing.M) {
	testscript.Main(goleakM{m}, map[string]func(){"porta": main})
}

type goleakM struct{ m *testing.M }

func (g goleakM) Run() int {
	code := g.m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			println("goleak:", err.Error())
			return 1
		}
	}
	return code
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// status N command args...: run it and want exit status N.
			"status": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) < 2 {
					ts.Fatalf("usage: status N command [args...]")
				}
				want, err := strconv.Atoi(args[0])
				if err != nil {
					ts.Fatalf("status: %v", err)
				}
				got := 0
				if err := ts.Exec(args[1], args[2:]...); err != nil {
					ee, ok := errors.AsType[*exec.ExitError](err)
					if !ok {
						ts.Fatalf("%s: %v", args[1], err)
					}
					got = ee.ExitCode()
				}
				if got != want {
					ts.Fatalf("exit status %d, want %d", got, want)
				}
			},
		},
	})
}
