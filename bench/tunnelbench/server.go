package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/porta443/porta/internal/h2"
	"github.com/porta443/porta/internal/sameport"
	"github.com/porta443/porta/internal/selfsigned"
	"github.com/porta443/porta/tunnel"
	"github.com/quic-go/quic-go/http3"
)

// cmdServer runs tunnel.Handler the way porta server does: one handler,
// TLS (HTTP/1.1 and HTTP/2) and QUIC (HTTP/3) on one port, with the
// tunnel package's recommended transport settings and porta's HTTP/2
// server (net/http's with -std-http2). It prints one line,
// "addr=... pin=... stats=...", writes cert.pem and key.pem into -dir,
// and serves its own memory figures on the stats address.
func cmdServer(args []string) error {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "TCP and UDP address")
	user := fs.String("user", "bench:bench-token", "NAME:TOKEN")
	dir := fs.String("dir", ".", "where to write cert.pem and key.pem")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile here until exit")
	memRate := fs.Int("memprofilerate", 0, "runtime.MemProfileRate for /heap (0: Go's default)")
	stdHTTP2 := fs.Bool("std-http2", false, "serve HTTP/2 with net/http's server, as porta server --std-http2")
	fs.Parse(args)
	if *memRate > 0 {
		runtime.MemProfileRate = *memRate
	}
	stop, err := startCPUProfile(*cpuprofile)
	if err != nil {
		return err
	}
	defer stop()

	certPEM, keyPEM, err := selfsigned.Generate("localhost", "127.0.0.1")
	if err != nil {
		return err
	}
	pair, err := selfsigned.Pair(certPEM, keyPEM)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*dir, "cert.pem"), certPEM, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*dir, "key.pem"), keyPEM, 0o600); err != nil {
		return err
	}
	users, err := tunnel.NewUsers(tunnel.UsersConfig{Users: []string{*user}, MaxStreams: 1 << 20})
	if err != nil {
		return err
	}
	h, err := tunnel.NewHandler(tunnel.HandlerConfig{
		Next:         http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "website\n") }),
		Users:        users,
		AllowPrivate: true,
	})
	if err != nil {
		return err
	}
	tcp, udp, err := sameport.Listen(*addr)
	if err != nil {
		return err
	}
	stats, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	hs := &http.Server{
		Handler:   h,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}, NextProtos: []string{"h2", "http/1.1"}},
		Protocols: &protos,
		HTTP2:     tunnel.ServerHTTP2Config(),
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	if !*stdHTTP2 {
		if err := (&h2.Server{}).ConfigureServer(hs); err != nil {
			return err
		}
	}
	h3s := &http3.Server{
		Handler:    h,
		TLSConfig:  http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{pair}}),
		QUICConfig: tunnel.ServerQUICConfig(),
	}
	ss := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/heap" { // a heap profile, for finding what an idle tunnel holds
			runtime.GC()
			pprof.Lookup("heap").WriteTo(w, 0)
			return
		}
		json.NewEncoder(w).Encode(memStats(h))
	})}
	errc := make(chan error, 3)
	go func() { errc <- hs.ServeTLS(tcp, "", "") }()
	go func() { errc <- h3s.Serve(udp) }()
	go func() { errc <- ss.Serve(stats) }()
	fmt.Printf("addr=%s pin=%s stats=%s\n", tcp.Addr(), selfsigned.Pin(pair.Leaf), stats.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	h.Close()
	hs.Close()
	h3s.Close()
	ss.Close()
	return err
}

// Mem is what the stats address reports, after a GC.
type Mem struct {
	HeapInuse  uint64
	StackInuse uint64
	RSS        uint64
	Goroutines int
	Tunnels    int
}

func memStats(h *tunnel.Handler) Mem {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := Mem{HeapInuse: ms.HeapInuse, StackInuse: ms.StackInuse, Goroutines: runtime.NumGoroutine(), Tunnels: h.Active()}
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			pages, _ := strconv.ParseUint(f[1], 10, 64)
			m.RSS = pages * uint64(os.Getpagesize())
		}
	}
	return m
}
