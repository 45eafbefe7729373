// Command clientbench is the helper bench/client.sh drives:
//
//	source   an HTTP/1.1 byte source on loopback: GET /N answers N
//	         pseudo-random bytes (the same bytes for the same N) with a
//	         Content-Length; prints "addr=ADDR" once it listens
//	digest   prints the SHA-256 of what the source sends for -bytes N
//	port     prints a free loopback port (TCP and UDP)
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/porta443/porta/bench/internal/byteseq"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: clientbench source|digest|port [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (source)")
	n := fs.Int64("bytes", 1<<30, "size (digest)")
	fs.Parse(os.Args[2:])
	var err error
	switch os.Args[1] {
	case "source":
		err = source(*addr)
	case "digest":
		fmt.Println(byteseq.SHA256(*n))
	case "port":
		err = port()
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "clientbench:", err)
		os.Exit(1)
	}
}

func source(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("addr=%s\n", ln.Addr())
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/"), 10, 64)
		if err != nil || n < 0 {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		byteseq.Write(w, n)
	})
	return http.Serve(ln, h)
}

// port finds a loopback port free for both TCP and UDP.
func port() error {
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		p := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		fmt.Println(p)
		return nil
	}
	return fmt.Errorf("no free port")
}
