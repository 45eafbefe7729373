// Command udpbench is the helper bench/udp.sh drives:
//
//	echo   a UDP echo server on loopback; prints "addr=ADDR" once it listens
//	flood  keeps -window datagrams of -size bytes in flight to -target for
//	       -time, directly or through -socks (SOCKS5 UDP ASSOCIATE), and
//	       prints the echoes per second, the payload bytes per second each
//	       way and how many were lost
//	first  -samples times: a new socket (or a new SOCKS5 association), one
//	       datagram to -target, and the time until its echo; prints the
//	       median and the slowest
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: udpbench echo|flood|first [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (echo)")
	target := fs.String("target", "", "the echo server (flood, first)")
	socks := fs.String("socks", "", "a SOCKS5 proxy to go through; empty: direct")
	size := fs.Int("size", 1200, "datagram payload bytes (flood)")
	window := fs.Int("window", 64, "datagrams in flight (flood)")
	dur := fs.Duration("time", 5*time.Second, "how long to flood (flood)")
	samples := fs.Int("samples", 20, "first answers to time (first)")
	fs.Parse(os.Args[2:])
	var err error
	switch os.Args[1] {
	case "echo":
		err = echo(*addr)
	case "flood":
		err = flood(*socks, *target, *size, *window, *dur)
	case "first":
		err = first(*socks, *target, *samples)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "udpbench:", err)
		os.Exit(1)
	}
}

func echo(addr string) error {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("addr=%s\n", pc.LocalAddr())
	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return err
		}
		pc.WriteTo(buf[:n], from)
	}
}
