package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/porta443/porta/client"
	"github.com/urfave/cli/v2"
)

func clientCommand() *cli.Command {
	return &cli.Command{
		Name:  "client",
		Usage: "a local DNS resolver and SOCKS5/HTTP proxy that ride the server's one port",
		Flags: append([]cli.Flag{
			configFlag,
			&cli.StringSliceFlag{Name: "server", Usage: "`URL` https://NAME:TOKEN@host[:port] (repeatable: failover in order)"},
			&cli.StringFlag{Name: "dns", Value: "127.0.0.1:53", Usage: "local DNS resolver `ADDR`ess, UDP and TCP (\"\" turns it off)"},
			&cli.StringFlag{Name: "socks", Value: "127.0.0.1:1080", Usage: "local SOCKS5 proxy `ADDR`ess (\"\" turns it off)"},
			&cli.StringFlag{Name: "http-proxy", Usage: "local HTTP proxy `ADDR`ess (off unless given)"},
			&cli.StringFlag{Name: "ca", Usage: "trust servers signed by the PEM certificates in `FILE`"},
			&cli.StringFlag{Name: "pin", Usage: "trust the server whose key has this `SHA256` pin (sha256//BASE64, as porta server prints it)"},
			&cli.BoolFlag{Name: "insecure", Usage: "do not check the server's certificate at all (testing only)"},
			&cli.StringFlag{Name: "transport", Value: "auto", Usage: "`auto`, h3 or h2"},
			&cli.BoolFlag{Name: "std-http2", Usage: "carry HTTP/2 over net/http's client instead of porta's own (more CPU per byte; to compare, or to fall back on)"},
			&cli.StringSliceFlag{Name: "bootstrap", Usage: "resolver `IP[:PORT]` for the server's own name (repeatable; default: the system's)"},
			&cli.StringFlag{Name: "ech", Value: "auto", Usage: "Encrypted Client Hello: auto (the server's HTTPS record, through --bootstrap), off, or a `CONFIG` list in base64 (porta ech-config)"},
			&cli.BoolFlag{Name: "ech-fallback", Usage: "connect without ECH, the server's name in the clear, when the server rejects it (logged)"},
			&cli.StringSliceFlag{Name: "record", Usage: "a local DNS record `NAME=IP` (repeatable)"},
			&cli.StringSliceFlag{Name: "socks-user", Usage: "require SOCKS5 username/password `NAME:PASSWORD` (repeatable)"},
			metricsFlag,
			&cli.BoolFlag{Name: "no-fast-open", Usage: "reply to SOCKS/CONNECT only after the server's answer, so replies carry the tunnel's errors"},
		}, logFlags...),
		Action: runClient,
	}
}

// clientConfig maps the client's flags onto client.Config.
func clientConfig(c *cli.Context) (client.Config, error) {
	cfg := client.Config{
		Servers:    c.StringSlice("server"),
		Pin:        c.String("pin"),
		Insecure:   c.Bool("insecure"),
		Transport:  c.String("transport"),
		StdHTTP2:   c.Bool("std-http2"),
		NoFastOpen: c.Bool("no-fast-open"),
		Bootstrap:  c.StringSlice("bootstrap"),

		ECH:         c.String("ech"),
		ECHFallback: c.Bool("ech-fallback"),
	}
	trust := 0
	for _, set := range []bool{c.String("ca") != "", cfg.Pin != "", cfg.Insecure} {
		if set {
			trust++
		}
	}
	if trust > 1 {
		return cfg, usagef("--ca, --pin and --insecure: give one")
	}
	if f := c.String("ca"); f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return cfg, usagef("--ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return cfg, usagef("--ca %s: no PEM certificate in it", f)
		}
	}
	var err error
	if cfg.Records, err = client.ParseRecords(c.StringSlice("record")); err != nil {
		return cfg, usageError{flagError(err)}
	}
	for _, u := range c.StringSlice("socks-user") {
		name, pass, ok := strings.Cut(u, ":")
		if !ok || name == "" || pass == "" || len(name) > 255 || len(pass) > 255 {
			return cfg, usagef("--socks-user: want NAME:PASSWORD, each 1 to 255 bytes")
		}
		if cfg.SOCKSUsers == nil {
			cfg.SOCKSUsers = map[string]string{}
		}
		cfg.SOCKSUsers[name] = pass
	}
	if a := c.String("http-proxy"); a != "" {
		cfg.PACProxies = []string{"PROXY " + a}
		if s := c.String("socks"); s != "" {
			cfg.PACProxies = append(cfg.PACProxies, "SOCKS5 "+s)
		}
	}
	return cfg, nil
}

func runClient(c *cli.Context) error {
	if err := applyConfigFile(c); err != nil {
		return err
	}
	if c.Args().Present() {
		return usagef("client: unexpected argument %q", c.Args().First())
	}
	log, err := newLogger(c, c.App.ErrWriter)
	if err != nil {
		return err
	}
	cfg, err := clientConfig(c)
	if err != nil {
		return err
	}
	if err := checkMetricsAddr(c.String("metrics")); err != nil {
		return err
	}
	cfg.Logger = log
	cl, err := client.New(cfg)
	if err != nil {
		return usageError{flagError(err)}
	}
	ls, err := client.Listen(c.String("dns"), c.String("socks"), c.String("http-proxy"))
	if err != nil {
		cl.Close()
		return flagError(err)
	}
	if addr := c.String("metrics"); addr != "" {
		if ls.Metrics, err = client.ListenMetrics(addr); err != nil {
			ls.Close()
			cl.Close()
			return flagError(err)
		}
	}
	return serveUntilDone(c.Context, log, func() error { return cl.Serve(context.Background(), ls) }, cl.Shutdown, nil)
}

// serveUntilDone runs serve until it fails or ctx ends (SIGINT/SIGTERM),
// then shuts down, giving requests in flight drainTimeout. reload, if set,
// runs on SIGHUP.
func serveUntilDone(ctx context.Context, log *slog.Logger, serve func() error, shutdown func(context.Context) error, reload func() error) error {
	var hup chan os.Signal // nil: never ready
	if reload != nil {
		// Before serving, which logs that it is: a SIGHUP sent on that
		// line must not meet the default action, which ends the process.
		hup = make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
	done := make(chan error, 1)
	go func() { done <- serve() }()
	for {
		select {
		case err := <-done:
			return err // a listener failed
		case <-hup:
			if err := reload(); err != nil {
				log.Error("reload failed; keeping what was in use", "err", err)
			} else {
				log.Info("reloaded")
			}
		case <-ctx.Done():
			log.Info("shutting down", "drain", drainTimeout)
			sctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
			err := shutdown(sctx)
			cancel()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				log.Warn("shutdown", "err", err)
			}
			if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("after shutdown: %w", err)
			}
			return nil
		}
	}
}
