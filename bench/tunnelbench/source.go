package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/porta443/porta/bench/internal/byteseq"
)

// The source speaks a line protocol: "ping" is answered "pong", and a
// number N is answered with N pseudo-random bytes (the same bytes for the
// same N, so a client can check their digest) before the source closes.

func cmdSource(args []string) error {
	fs := flag.NewFlagSet("source", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	fs.Parse(args)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Printf("addr=%s\n", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go serveSource(c)
	}
}

func serveSource(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSpace(line)
		if line == "ping" {
			if _, err := io.WriteString(c, "pong\n"); err != nil {
				return
			}
			continue
		}
		n, err := strconv.ParseInt(line, 10, 64)
		if err != nil {
			return
		}
		byteseq.Write(c, n)
		return
	}
}

// cmdDigest prints the SHA-256 of what the source sends for N bytes.
func cmdDigest(args []string) error {
	fs := flag.NewFlagSet("digest", flag.ExitOnError)
	n := fs.Int64("bytes", 1<<30, "size")
	fs.Parse(args)
	fmt.Println(byteseq.SHA256(*n))
	return nil
}
