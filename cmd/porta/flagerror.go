package main

import (
	"errors"
	"fmt"

	"github.com/porta443/porta/client"
	"github.com/porta443/porta/server"
)

// flagError words a library's typed error (server.ConfigError,
// server.FieldsError, server.ListenError and client's ConfigError and
// ListenError) in the flags that set the fields, as the command line and
// config file name them; other errors pass unchanged.
func flagError(err error) error {
	if ce, ok := errors.AsType[*server.ConfigError](err); ok {
		if flag := serverFlags[ce.Field]; flag != "" {
			return fieldError(flag, ce.Value, ce.Err)
		}
	}
	if fe, ok := errors.AsType[*server.FieldsError](err); ok {
		return flagWords{fe.Words(func(field string) string { return "--" + serverFlags[field] }), fe.Err}
	}
	if le, ok := errors.AsType[*server.ListenError](err); ok {
		if flag := serverListenFlags[le.Listener]; flag != "" {
			return fmt.Errorf("--%s: %w", flag, le.Err)
		}
	}
	if ce, ok := errors.AsType[*client.ConfigError](err); ok {
		if flag := clientFlags[ce.Field]; flag != "" {
			return fieldError(flag, ce.Value, ce.Err)
		}
	}
	if le, ok := errors.AsType[*client.ListenError](err); ok {
		if flag := clientListenFlags[le.Listener]; flag != "" {
			return fmt.Errorf("--%s: %w", flag, le.Err)
		}
	}
	return err
}

// flagWords is an error worded anew that still wraps what it was about.
type flagWords struct {
	msg string
	err error
}

func (e flagWords) Error() string { return e.msg }
func (e flagWords) Unwrap() error { return e.err }

// joinedFlagErrors is flagError for each of the errors errors.Join put
// together, as server.Reload returns them.
func joinedFlagErrors(err error) error {
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return flagError(err)
	}
	var errs []error // not the joined ones' own slice, which is not ours to change
	for _, e := range joined.Unwrap() {
		errs = append(errs, flagError(e))
	}
	return errors.Join(errs...)
}

// fieldError is "--flag: what is wrong", or "--flag "value": what is
// wrong" when one value of it is refused.
func fieldError(flag, value string, err error) error {
	if value != "" {
		return fmt.Errorf("--%s %q: %w", flag, value, err)
	}
	return fmt.Errorf("--%s: %w", flag, err)
}

// serverFlags are the flags that set server.Config's fields.
var serverFlags = map[string]string{
	"CertFile":      "cert",
	"KeyFile":       "key",
	"SelfSigned":    "self-signed",
	"ACME":          "acme",
	"ACMEEmail":     "acme-email",
	"ACMECA":        "acme-ca",
	"ACMECARoot":    "acme-ca-root",
	"StateDir":      "state-dir",
	"ECHPublicName": "ech-public-name",
	"ECHRotate":     "ech-rotate",
	"SiteDir":       "site",
	"SiteProxy":     "site-proxy",
	"HSTSMaxAge":    "hsts-max-age",
	"DoHPath":       "doh-path",
	"Upstreams":     "upstream",
	"Users":         "user",
	"UsersFile":     "users",
	"ProxyFrom":     "proxy-from",
}

// serverListenFlags are the flags whose addresses server.Listen and
// server.ListenMetrics open, by the Listeners field.
var serverListenFlags = map[string]string{
	"TCP":     "listen",
	"HTTP":    "http-listen",
	"Metrics": "metrics",
}

// clientFlags are the flags that set client.Config's fields.
var clientFlags = map[string]string{
	"Servers":   "server",
	"Bootstrap": "bootstrap",
	"Records":   "record",
	"ECH":       "ech",
}

// clientListenFlags are the flags whose addresses client.Listen and
// client.ListenMetrics open, by the Listeners field.
var clientListenFlags = map[string]string{
	"DNSUDP":    "dns",
	"SOCKS":     "socks",
	"HTTPProxy": "http-proxy",
	"Metrics":   "metrics",
}
