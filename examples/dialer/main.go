// Dialer fetches a URL through a porta server's tunnel: a tunnel.Dialer is
// the DialContext of an http.Transport, so every connection the transport
// makes is a CONNECT over the Dialer's one HTTP/2 or HTTP/3 connection to
// the server, and the target sees the server's address, not this one's.
//
//	go run ./examples/dialer -server https://alice:TOKEN@vps.example.org \
//		https://example.org/
//
// Names in the URL are resolved by the server. TLS to the target is the
// transport's own, end to end through the tunnel.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/porta443/porta/tunnel"
)

func main() {
	server := flag.String("server", "", "the porta server, `URL` https://NAME:TOKEN@host[:port]")
	pin := flag.String("pin", "", "trust the server whose key has this `SHA256` pin (porta server --self-signed prints it)")
	flag.Parse()
	if flag.NArg() != 1 {
		log.Fatal("usage: dialer -server URL [-pin SHA256] TARGET-URL")
	}
	d, err := tunnel.NewDialer(tunnel.DialerConfig{Servers: []string{*server}, Pin: *pin})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	body, err := fetch(ctx, d, flag.Arg(0))
	if err != nil {
		log.Fatal(err)
	}
	os.Stdout.Write(body)
}

// maxBody bounds what fetch reads.
const maxBody = 1 << 20

// fetch GETs url with an http.Transport whose every connection d dials.
func fetch(ctx context.Context, d *tunnel.Dialer, url string) ([]byte, error) {
	tr := &http.Transport{
		DialContext:         d.DialContext,
		Proxy:               nil, // the tunnel is the proxy: never an environment one as well
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", url, err)
	}
	return body, nil
}
