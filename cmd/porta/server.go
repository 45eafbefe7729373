package main

import (
	"context"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/porta443/porta/server"
	"github.com/urfave/cli/v2"
)

// metricsFlag is --metrics ADDR, on the server and the client alike.
var metricsFlag = &cli.StringFlag{Name: "metrics", Usage: "serve Prometheus metrics at http://`ADDR`/metrics (a host-less :PORT is loopback; off unless given)"}

// drainTimeout is how long a stopping server lets requests in flight finish.
const drainTimeout = 3 * time.Second

func serverCommand() *cli.Command {
	return &cli.Command{
		Name:  "server",
		Usage: "serve the website, DoH and the tunnel on one port (TCP and UDP)",
		Flags: append([]cli.Flag{
			configFlag,
			&cli.StringFlag{Name: "listen", Value: ":443", Usage: "TCP and UDP `ADDR`ess"},
			&cli.StringFlag{Name: "cert", Usage: "PEM certificate chain `FILE` (read again on SIGHUP)"},
			&cli.StringFlag{Name: "key", Usage: "PEM private key `FILE`"},
			&cli.StringSliceFlag{Name: "acme", Usage: "obtain and renew the certificate for `NAME` from an ACME CA, Let's Encrypt unless --acme-ca says (repeatable)"},
			&cli.StringFlag{Name: "acme-email", Usage: "the ACME account's contact `ADDRESS`"},
			&cli.StringFlag{Name: "acme-ca", Usage: "the ACME directory `URL` of another CA"},
			&cli.StringFlag{Name: "acme-ca-root", Usage: "PEM `FILE` of the roots the --acme-ca's HTTPS is verified with"},
			&cli.BoolFlag{Name: "self-signed", Usage: "make (and keep in --state-dir) a self-signed certificate; prints its pin"},
			&cli.StringFlag{Name: "state-dir", Usage: "`DIR` for certificates and keys (default: $STATE_DIRECTORY, else ~/.local/state/porta)"},
			&cli.StringFlag{Name: "http-listen", Usage: "plain HTTP `ADDR`ess that redirects to HTTPS (off unless given)"},
			&cli.StringFlag{Name: "site", Usage: "serve the static files in `DIR` as the website"},
			&cli.StringFlag{Name: "site-proxy", Usage: "reverse-proxy the website to a local backend `URL`"},
			&cli.DurationFlag{Name: "hsts-max-age", Value: 365 * 24 * time.Hour, Usage: "max-age of the website's Strict-Transport-Security over HTTPS, a `DURATION` (0 turns it off)"},
			&cli.StringFlag{Name: "doh-path", Value: "/dns-query", Usage: "`PATH` of DNS-over-HTTPS (and below it)"},
			&cli.StringSliceFlag{Name: "upstream", Usage: "resolver `URL`: udp://, tcp://, tls:// or https:// (repeatable; default: the system's)"},
			&cli.StringSliceFlag{Name: "user", Usage: "a tunnel user, `NAME:TOKEN` (repeatable; make a token with porta token)"},
			&cli.StringFlag{Name: "users", Usage: "a `FILE` of tunnel users, read again on SIGHUP"},
			&cli.BoolFlag{Name: "allow-private", Usage: "let tunnels reach loopback, private and link-local addresses"},
			&cli.BoolFlag{Name: "std-http2", Usage: "serve HTTP/2 with net/http's server, not porta's (which can half-close a tunnel)"},
			&cli.BoolFlag{Name: "proxy-protocol", Usage: "read a PROXY protocol v1/v2 header on each TCP connection from --proxy-from (behind HAProxy or a cloud load balancer)"},
			&cli.StringSliceFlag{Name: "proxy-from", Usage: "a load balancer's address, `CIDR` or IP, that sends PROXY headers (repeatable)"},
			metricsFlag,
			&cli.StringFlag{Name: "ech-public-name", Usage: "turn on Encrypted Client Hello: the `NAME` its ClientHellos show in the clear (the certificate must cover it)"},
			&cli.DurationFlag{Name: "ech-rotate", Value: 24 * time.Hour, Usage: "replace the ECH key every `DURATION`, the one before still accepted as long again (0: never)"},
		}, logFlags...),
		Action: runServer,
	}
}

func runServer(c *cli.Context) error {
	if err := applyConfigFile(c); err != nil {
		return err
	}
	if c.Args().Present() {
		return usagef("server: unexpected argument %q", c.Args().First())
	}
	log, err := newLogger(c, c.App.ErrWriter)
	if err != nil {
		return err
	}
	hsts, err := hstsMaxAge(c.Duration("hsts-max-age"))
	if err != nil {
		return err
	}
	if err := checkMetricsAddr(c.String("metrics")); err != nil {
		return err
	}
	rotate, err := echRotate(c.Duration("ech-rotate"))
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{
		CertFile:      c.String("cert"),
		KeyFile:       c.String("key"),
		SelfSigned:    c.Bool("self-signed"),
		ACME:          c.StringSlice("acme"),
		ACMEEmail:     c.String("acme-email"),
		ACMECA:        c.String("acme-ca"),
		ACMECARoot:    c.String("acme-ca-root"),
		StateDir:      c.String("state-dir"),
		SiteDir:       c.String("site"),
		SiteProxy:     c.String("site-proxy"),
		HSTSMaxAge:    hsts,
		DoHPath:       c.String("doh-path"),
		Upstreams:     c.StringSlice("upstream"),
		Users:         c.StringSlice("user"),
		UsersFile:     c.String("users"),
		AllowPrivate:  c.Bool("allow-private"),
		StdHTTP2:      c.Bool("std-http2"),
		ProxyProtocol: c.Bool("proxy-protocol"),
		ProxyFrom:     c.StringSlice("proxy-from"),
		Logger:        log,

		ECHPublicName: c.String("ech-public-name"),
		ECHRotate:     rotate,
	})
	if err != nil {
		return usageError{flagError(err)}
	}
	if c.Bool("self-signed") {
		log.Info("self-signed certificate", "pin", srv.Pin())
	}
	if c.Bool("std-http2") && !stdHTTP2TakesUDP() {
		log.Warn("CONNECT-UDP over HTTP/2 is off: net/http's HTTP/2 server (--std-http2) takes extended CONNECT only with GODEBUG=http2xconnect=1 in the environment; HTTP/3 carries UDP either way")
	}
	ls, err := server.Listen(c.String("listen"), c.String("http-listen"))
	if err != nil {
		srv.Close()
		return flagError(err)
	}
	if addr := c.String("metrics"); addr != "" {
		if ls.Metrics, err = server.ListenMetrics(addr, ls.TCP); err != nil {
			ls.Close()
			srv.Close()
			return flagError(err)
		}
	}

	return serveUntilDone(c.Context, log, func() error { return srv.Serve(context.Background(), ls) }, srv.Shutdown, func() error { return joinedFlagErrors(srv.Reload()) })
}

// checkMetricsAddr checks the form of --metrics before anything listens.
func checkMetricsAddr(addr string) error {
	if addr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return usagef("--metrics %q: want HOST:PORT or :PORT", addr)
	}
	return nil
}

// hstsMaxAge maps --hsts-max-age to Config.HSTSMaxAge: 0 turns HSTS off.
func hstsMaxAge(d time.Duration) (time.Duration, error) {
	return zeroMeansOff("hsts-max-age", "off", "a second", d)
}

// zeroMeansOff maps a duration flag whose 0 turns something off onto a
// Config field whose 0 is the default and whose negative turns it off;
// what is negative on the command line is an error naming the flag.
func zeroMeansOff(flag, off, least string, d time.Duration) (time.Duration, error) {
	switch {
	case d < 0:
		return 0, usagef("--%s %v: want 0 (%s) or a duration of %s or more", flag, d, off, least)
	case d == 0:
		return -1, nil
	}
	return d, nil
}

// stdHTTP2TakesUDP reports whether net/http's HTTP/2 server takes extended
// CONNECT here. It reads http2xconnect from the environment in its init;
// a //go:debug line cannot set it (the go command refuses the key), so
// the binary cannot turn it on for itself.
func stdHTTP2TakesUDP() bool {
	return slices.Contains(strings.Split(os.Getenv("GODEBUG"), ","), "http2xconnect=1")
}
