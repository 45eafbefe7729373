package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"

	"github.com/porta443/porta/client"
	"github.com/porta443/porta/server"
	"github.com/porta443/porta/tunnel"
	"github.com/urfave/cli/v2"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "run a server and a client together on loopback, and print what to try",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8443", Usage: "the server's `ADDR`ess (another port is taken if it is busy)"},
			&cli.StringFlag{Name: "dns", Value: "127.0.0.1:5353", Usage: "the client's DNS `ADDR`ess"},
			&cli.StringFlag{Name: "socks", Value: "127.0.0.1:1080", Usage: "the client's SOCKS5 `ADDR`ess"},
			&cli.StringFlag{Name: "http-proxy", Value: "127.0.0.1:8080", Usage: "the client's HTTP proxy `ADDR`ess"},
			&cli.StringSliceFlag{Name: "upstream", Usage: "the server's resolver `URL` (repeatable; default: the system's)"},
		}, logFlags...),
		Action: runDemo,
	}
}

// demoRecord is the client's local record in the demo: it answers without
// the server, and so without the internet.
const demoRecord = "porta.test=127.0.0.1"

func runDemo(c *cli.Context) error {
	if c.Args().Present() {
		return usagef("demo: unexpected argument %q", c.Args().First())
	}
	if c.String("log-level") == "info" && !c.IsSet("log-level") {
		c.Set("log-level", "warn") // the demo's own lines say what matters
	}
	log, err := newLogger(c, c.App.ErrWriter)
	if err != nil {
		return err
	}
	stateDir, err := os.MkdirTemp("", "porta-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stateDir)

	token := tunnel.NewToken()
	srv, err := server.New(server.Config{
		SelfSigned:   true,
		StateDir:     stateDir,
		Users:        []string{"demo:" + token},
		AllowPrivate: true,
		Upstreams:    c.StringSlice("upstream"),
		Logger:       log.With("side", "server"),
	})
	if err != nil {
		return usageError{flagError(err)}
	}
	defer srv.Close()
	var sls server.Listeners
	if err := listenOrAnyPort(c.String("listen"), func(addr string) (err error) {
		sls, err = server.Listen(addr, "")
		return err
	}); err != nil {
		return flagError(err)
	}
	serverAddr := sls.TCP.Addr().String()

	records, err := client.ParseRecords([]string{demoRecord})
	if err != nil {
		return err
	}
	cl, err := client.New(client.Config{
		Servers: []string{"https://demo:" + token + "@" + serverAddr},
		Pin:     srv.Pin(),
		Records: records,
		Logger:  log.With("side", "client"),
	})
	if err != nil {
		sls.Close()
		return err
	}
	var cls client.Listeners
	for _, l := range []struct {
		flag string
		set  func(string) error
	}{
		{"dns", func(a string) (err error) { cls.DNSUDP, cls.DNSTCP, err = listenDNSPair(a); return err }},
		{"socks", func(a string) (err error) { cls.SOCKS, err = net.Listen("tcp", a); return err }},
		{"http-proxy", func(a string) (err error) { cls.HTTPProxy, err = net.Listen("tcp", a); return err }},
	} {
		if err := listenOrAnyPort(c.String(l.flag), l.set); err != nil {
			sls.Close()
			cls.Close()
			cl.Close()
			return fmt.Errorf("--%s: %w", l.flag, err)
		}
	}

	printDemo(c.App.Writer, serverAddr, token, srv.Pin(), cls)

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() { errs <- srv.Serve(context.Background(), sls) })
	wg.Go(func() { errs <- cl.Serve(context.Background(), cls) })
	var first error
	select {
	case <-c.Context.Done():
	case first = <-errs:
	}
	fmt.Fprintln(c.App.Writer, "stopping...")
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	cl.Shutdown(ctx)
	srv.Shutdown(ctx)
	wg.Wait()
	close(errs)
	for err := range errs {
		if first == nil {
			first = err
		}
	}
	if errors.Is(first, http.ErrServerClosed) {
		first = nil
	}
	return first
}

// listenOrAnyPort listens on addr, or on another port of its host if that
// one is busy, so that the demo starts beside whatever else runs.
func listenOrAnyPort(addr string, listen func(string) error) error {
	err := listen(addr)
	if !errors.Is(err, syscall.EADDRINUSE) {
		return err
	}
	host, _, _ := net.SplitHostPort(addr)
	return listen(net.JoinHostPort(host, "0"))
}

// listenDNSPair opens the DNS listeners the way client.Listen does; its
// error is the socket's, which the caller words in the flag.
func listenDNSPair(addr string) (net.PacketConn, net.Listener, error) {
	ls, err := client.Listen(addr, "", "")
	if le, ok := errors.AsType[*client.ListenError](err); ok {
		err = le.Err
	}
	return ls.DNSUDP, ls.DNSTCP, err
}

func printDemo(w io.Writer, serverAddr, token, pin string, cls client.Listeners) {
	host, port, _ := net.SplitHostPort(serverAddr)
	dnsHost, dnsPort, _ := net.SplitHostPort(cls.DNSUDP.LocalAddr().String())
	socks := cls.SOCKS.Addr().String()
	httpProxy := cls.HTTPProxy.Addr().String()
	var b strings.Builder
	fmt.Fprintf(&b, "porta demo: a server and a client on loopback.\n\n")
	fmt.Fprintf(&b, "  server   https://%s (self-signed, pin %s)\n", serverAddr, pin)
	fmt.Fprintf(&b, "  user     demo:%s\n", token)
	fmt.Fprintf(&b, "  client   DNS %s:%s, SOCKS5 %s, HTTP proxy %s\n\n", dnsHost, dnsPort, socks, httpProxy)
	fmt.Fprintf(&b, "Try:\n")
	cmds := [][2]string{
		{fmt.Sprintf("dig @%s -p %s porta.test", dnsHost, dnsPort), "a local record of the client"},
		{fmt.Sprintf("curl -k https://%s/", serverAddr), "what everyone else sees: a website"},
		{fmt.Sprintf("curl --socks5-hostname %s -k https://%s/", socks, serverAddr), "the same page, through the tunnel"},
		{fmt.Sprintf("curl -x http://%s -k https://%s/", httpProxy, serverAddr), "again, through the HTTP proxy"},
		{fmt.Sprintf("curl -k --proxy-insecure -p -x https://demo:%s@%s https://%s/", token, serverAddr, serverAddr), "the server as a standard HTTPS proxy"},
		{fmt.Sprintf("dig @%s -p %s example.com", dnsHost, dnsPort), "through the tunnel to the server's DoH (needs its upstream)"},
		{fmt.Sprintf("dig +https @%s -p %s example.com", host, port), "the server's DoH, directly (needs its upstream)"},
	}
	for _, c := range cmds {
		fmt.Fprintf(&b, "  # %s\n  %s\n", c[1], c[0])
	}
	fmt.Fprintf(&b, "\nCtrl-C stops both.\n")
	io.WriteString(w, b.String())
}
