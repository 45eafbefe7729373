package main

import (
	"encoding/base64"
	"fmt"
	"time"

	"github.com/porta443/porta/server"
	"github.com/urfave/cli/v2"
)

// echConfigCommand prints the server's ECH config list, for an HTTPS
// record in the server's own DNS zone or a client's --ech. It takes the
// server's flags, so that --config can name the server's file; it reads
// only --ech-public-name and --state-dir.
func echConfigCommand() *cli.Command {
	return &cli.Command{
		Name:   "ech-config",
		Usage:  "print the server's ECH config list in base64 (takes porta server's flags; uses --ech-public-name and --state-dir)",
		Flags:  serverCommand().Flags,
		Action: runECHConfig,
	}
}

func runECHConfig(c *cli.Context) error {
	if err := applyConfigFile(c); err != nil {
		return err
	}
	if c.Args().Present() {
		return usagef("ech-config: unexpected argument %q", c.Args().First())
	}
	list, err := server.ECHConfigList(server.Config{
		StateDir:      c.String("state-dir"),
		ECHPublicName: c.String("ech-public-name"),
	})
	if err != nil {
		return usageError{flagError(err)}
	}
	_, err = fmt.Fprintln(c.App.Writer, base64.StdEncoding.EncodeToString(list))
	return err
}

// echRotate maps --ech-rotate to Config.ECHRotate: 0 never rotates.
func echRotate(d time.Duration) (time.Duration, error) {
	return zeroMeansOff("ech-rotate", "never", "an hour", d)
}
