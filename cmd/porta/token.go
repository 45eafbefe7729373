package main

import (
	"fmt"

	"github.com/porta443/porta/tunnel"
	"github.com/urfave/cli/v2"
)

func tokenCommand() *cli.Command {
	return &cli.Command{
		Name:  "token",
		Usage: "print a new random token (32 bytes) for --user NAME:TOKEN",
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("token: unexpected argument %q", c.Args().First())
			}
			_, err := fmt.Fprintln(c.App.Writer, tunnel.NewToken())
			return err
		},
	}
}
