// Command porta is one binary with two roles: `porta server` on a VPS owns
// port 443 and serves a website, DNS-over-HTTPS and an authenticated proxy
// tunnel on it; `porta client` on a laptop rides that one port.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

// Exit statuses: 1 for a failure while running, 2 for bad input on the
// command line or in a config file.
const (
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs porta with args and returns its exit status. ctx ends on
// SIGINT/SIGTERM.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := newApp(stdout, stderr).RunContext(ctx, args)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "porta: %v\n", err)
	if _, ok := errors.AsType[usageError](err); ok {
		return exitUsage
	}
	return exitFailure
}

// usageError is bad input: a flag, a config file, a value. Exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func newApp(stdout, stderr io.Writer) *cli.App {
	onUsageError := func(_ *cli.Context, err error, _ bool) error { return usageError{err} }
	app := &cli.App{
		Name:           "porta",
		Usage:          "a website, DNS-over-HTTPS and a proxy tunnel on one port",
		Writer:         stdout,
		ErrWriter:      stderr,
		OnUsageError:   onUsageError,
		ExitErrHandler: func(*cli.Context, error) {}, // run decides the exit status
		Commands: []*cli.Command{
			serverCommand(),
			echConfigCommand(),
			tokenCommand(),
			clientCommand(),
			demoCommand(),
			versionCommand(),
		},
		CommandNotFound: func(c *cli.Context, name string) {},
	}
	for _, cmd := range app.Commands {
		cmd.OnUsageError = onUsageError
	}
	app.Action = func(c *cli.Context) error {
		if c.Args().Present() {
			return usagef("unknown command %q (try porta --help)", c.Args().First())
		}
		return cli.ShowAppHelp(c)
	}
	return app
}
