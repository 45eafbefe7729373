// Command tunnelbench is the helper bench/tunnel.sh drives: a tunnel
// server (porta's tunnel.Handler on TLS and QUIC), a byte source, a
// userspace delay proxy, and clients that measure throughput, time to first
// byte and server memory per idle tunnel.
package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmds := map[string]func([]string) error{
		"server": cmdServer,
		"source": cmdSource,
		"delay":  cmdDelay,
		"digest": cmdDigest,
		"get":    cmdGet,
		"ttfb":   cmdTTFB,
		"idle":   cmdIdle,
	}
	f, ok := cmds[os.Args[1]]
	if !ok {
		usage()
	}
	if err := f(os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "tunnelbench "+os.Args[1]+":", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: tunnelbench server|source|delay|digest|get|ttfb|idle [flags]")
	os.Exit(2)
}

// startCPUProfile writes a CPU profile to path ("" for none) until stop.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
