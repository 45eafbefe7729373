// Command echbench is the helper bench/ech.sh drives: it makes TLS
// handshakes with a porta server over TCP and QUIC, with and without
// Encrypted Client Hello, interleaved in one run, and prints the median
// time of each kind and their ratios.
package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"time"

	"github.com/quic-go/quic-go"
)

func main() {
	server := flag.String("server", "", "porta server address (TCP and UDP)")
	list := flag.String("ech", "", "the server's ECH config list, base64 (porta ech-config)")
	name := flag.String("name", "localhost", "the server name the inner ClientHello carries")
	n := flag.Int("n", 200, "handshakes of each kind per round")
	rounds := flag.Int("rounds", 5, "rounds")
	flag.Parse()
	echList, err := base64.StdEncoding.DecodeString(*list)
	if err != nil || *server == "" {
		fmt.Fprintln(os.Stderr, "echbench: want -server ADDR and -ech LIST")
		os.Exit(2)
	}
	if err := run(*server, *name, echList, *n, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "echbench:", err)
		os.Exit(1)
	}
}

// kind is one sort of handshake.
type kind struct {
	label string
	quic  bool
	ech   bool
}

var kinds = []kind{{"tcp", false, false}, {"tcp_ech", false, true}, {"quic", true, false}, {"quic_ech", true, true}}

func run(server, name string, list []byte, n, rounds int) error {
	all := map[string][]time.Duration{}
	ratios := map[string][]float64{}
	for range rounds {
		round := map[string][]time.Duration{}
		for range n {
			for _, k := range kinds { // interleaved: the machine's load falls on all alike
				d, err := handshake(server, name, list, k)
				if err != nil {
					return fmt.Errorf("%s: %w", k.label, err)
				}
				round[k.label] = append(round[k.label], d)
			}
		}
		for _, k := range kinds {
			all[k.label] = append(all[k.label], round[k.label]...)
		}
		ratios["tcp"] = append(ratios["tcp"], float64(median(round["tcp_ech"]))/float64(median(round["tcp"])))
		ratios["quic"] = append(ratios["quic"], float64(median(round["quic_ech"]))/float64(median(round["quic"])))
	}
	for _, k := range kinds {
		fmt.Printf("%s_ms=%.3f ", k.label, ms(median(all[k.label])))
	}
	slices.Sort(ratios["tcp"])
	slices.Sort(ratios["quic"])
	fmt.Printf("tcp_ratio=%.2f quic_ratio=%.2f\n", ratios["tcp"][len(ratios["tcp"])/2], ratios["quic"][len(ratios["quic"])/2])
	return nil
}

// handshake makes one full handshake of kind k and returns how long it
// took, from dialing to the client's handshake done.
func handshake(server, name string, list []byte, k kind) (time.Duration, error) {
	conf := &tls.Config{ServerName: name, InsecureSkipVerify: true, NextProtos: []string{"h2"}} // a bench: the pin is not the point
	if k.ech {
		conf.EncryptedClientHelloConfigList = list
		conf.EncryptedClientHelloRejectionVerify = func(tls.ConnectionState) error { return nil }
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	begun := time.Now()
	var accepted bool
	if k.quic {
		conf.NextProtos = []string{"h3"}
		c, err := quic.DialAddr(ctx, server, conf, nil)
		if err != nil {
			return 0, err
		}
		took := time.Since(begun)
		accepted = c.ConnectionState().TLS.ECHAccepted
		c.CloseWithError(0, "")
		return took, checkECH(k, accepted)
	}
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", server)
	if err != nil {
		return 0, err
	}
	defer raw.Close()
	c := tls.Client(raw, conf)
	if err := c.HandshakeContext(ctx); err != nil {
		return 0, err
	}
	took := time.Since(begun)
	return took, checkECH(k, c.ConnectionState().ECHAccepted)
}

func checkECH(k kind, accepted bool) error {
	if accepted != k.ech {
		return errors.New("ECH accepted is not what was asked for")
	}
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
