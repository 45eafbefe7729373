package main

import (
	"errors"
	"fmt"

	"github.com/porta443/porta/client"
	"github.com/porta443/porta/server"
)

// flagError words a library's typed Config error (server.ConfigError,
// client.ConfigError) in the flag that sets the field, as the command line
// and config file name it; other errors pass unchanged.
func flagError(err error) error {
	if ce, ok := errors.AsType[*server.ConfigError](err); ok {
		if flag := serverFlag(ce.Field); flag != "" {
			return fmt.Errorf("--%s: %w", flag, ce.Err)
		}
	}
	if ce, ok := errors.AsType[*client.ConfigError](err); ok {
		if flag := clientFlag(ce.Field); flag != "" {
			return fmt.Errorf("--%s: %w", flag, ce.Err)
		}
	}
	return err
}

// serverFlag is the flag that sets a server.Config field, for the fields
// whose errors come typed.
func serverFlag(field string) string {
	switch field {
	case "HSTSMaxAge":
		return "hsts-max-age"
	case "ProxyFrom":
		return "proxy-from"
	case "ACME":
		return "acme"
	case "ACMEEmail":
		return "acme-email"
	case "ACMECA":
		return "acme-ca"
	case "ACMECARoot":
		return "acme-ca-root"
	case "StateDir":
		return "state-dir"
	case "ECHPublicName":
		return "ech-public-name"
	case "ECHRotate":
		return "ech-rotate"
	}
	return ""
}

// clientFlag is the flag that sets a client.Config field, for the fields
// whose errors come typed.
func clientFlag(field string) string {
	switch field {
	case "ECH":
		return "ech"
	}
	return ""
}
