// Command dnsupstream is the benchmark's helper for bench/doh.sh. It runs
// one of, on loopback until interrupted:
//
//	upstream   a fast DNS server (UDP and TCP) answering A 192.0.2.1 for any name
//	doh        porta's doh.Handler and doh.Resolver over TLS (HTTP/1.1, HTTP/2)
//	canned     a bare HTTP/2 handler returning one canned answer: the ceiling, on
//	           net/http's HTTP/2 server (-h2 porta: on porta's, internal/h2;
//	           -coalesce: with porta's coalesced writes, internal/coalesce)
//	queries    prints DoH GET URLs for N names to stdout
//	cert       writes a self-signed cert.pem and key.pem for 127.0.0.1 into -dir
//
// Servers print "listening ADDR" once they are ready.
package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"github.com/porta443/porta/internal/sameport"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"github.com/porta443/porta/doh"
	"github.com/porta443/porta/internal/coalesce"
	"github.com/porta443/porta/internal/h2"
	"github.com/porta443/porta/internal/selfsigned"
)

func main() {
	mode := flag.String("mode", "", "upstream, doh, canned or queries")
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	upstream := flag.String("upstream", "", "upstream URL for -mode doh")
	base := flag.String("url", "https://127.0.0.1/dns-query", "URL prefix for -mode queries")
	n := flag.Int("n", 100, "names for -mode queries")
	prefix := flag.String("prefix", "n", "name prefix for -mode queries")
	dir := flag.String("dir", ".", "directory for -mode cert")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the server here")
	coalesced := flag.Bool("coalesce", false, "-mode canned: coalesce small writes as porta's server does")
	h2server := flag.String("h2", "std", "-mode canned and doh: the HTTP/2 server, std (net/http's) or porta (internal/h2)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	var err error
	switch *mode {
	case "upstream":
		err = serveUpstream(ctx, *listen)
	case "doh":
		err = serveDoH(ctx, *listen, *upstream)
	case "canned":
		err = serveCanned(ctx, *listen, *coalesced, *h2server == "porta")
	case "cert":
		err = writeCert(*dir)
	case "queries":
		err = printQueries(*base, *prefix, *n)
	default:
		err = fmt.Errorf("unknown -mode %q", *mode)
	}
	if err != nil {
		log.Print(err)
		stop()
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// query is a DoH-style query for name: ID 0, RD, EDNS with 1232 bytes.
func query(name string) []byte {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	m.Id = 0
	m.SetEdns0(1232, false)
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

func printQueries(base, prefix string, n int) error {
	w := os.Stdout
	for i := range n {
		if _, err := fmt.Fprintf(w, "%s?dns=%s\n", base, base64.RawURLEncoding.EncodeToString(query(fmt.Sprintf("%s%d.bench.example", prefix, i)))); err != nil {
			return err
		}
	}
	return nil
}

func answerAny(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	if len(r.Question) == 1 && r.Question[0].Qtype == dns.TypeA {
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 3600}, A: net.IPv4(192, 0, 2, 1)}}
	}
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(1232, opt.Do())
	}
	w.WriteMsg(m)
}

func serveUpstream(ctx context.Context, addr string) error {
	ln, pc, err := sameport.Listen(addr)
	if err != nil {
		return err
	}
	if uc, ok := pc.(*net.UDPConn); ok {
		uc.SetReadBuffer(4 << 20) // bursts from the resolvers under test
	}
	h := dns.HandlerFunc(answerAny)
	servers := []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}}
	errc := make(chan error, len(servers))
	for _, s := range servers {
		go func() { errc <- s.ActivateAndServe() }()
	}
	fmt.Println("listening", ln.Addr())
	<-ctx.Done()
	for _, s := range servers {
		s.Shutdown()
	}
	for range servers {
		<-errc
	}
	return nil
}

// serveHTTP serves h over TLS; coalesced wraps the listener as porta's
// server does, portaH2 serves HTTP/2 with porta's server.
func serveHTTP(ctx context.Context, addr string, h http.Handler, coalesced, portaH2 bool) error {
	certPEM, keyPEM, err := selfsigned.Generate("localhost", "127.0.0.1")
	if err != nil {
		return err
	}
	cert, err := selfsigned.Pair(certPEM, keyPEM)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if coalesced {
		ln = coalesce.NewListener(ln)
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}},
		Protocols:         &protos,
		ReadHeaderTimeout: 10 * time.Second,
	}
	if portaH2 {
		if err := (&h2.Server{}).ConfigureServer(srv); err != nil {
			return err
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	fmt.Println("listening", ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func serveDoH(ctx context.Context, addr, upstream string) error {
	r, err := doh.NewResolver(doh.ResolverConfig{Upstreams: []string{upstream}})
	if err != nil {
		return err
	}
	defer r.Close()
	return serveHTTP(ctx, addr, &doh.Handler{Resolver: r}, true, true)
}

func serveCanned(ctx context.Context, addr string, coalesced, portaH2 bool) error {
	m := new(dns.Msg)
	if err := m.Unpack(query("canned.bench.example")); err != nil {
		return err
	}
	resp := new(dns.Msg)
	resp.SetReply(m)
	resp.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: m.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 3600}, A: net.IPv4(192, 0, 2, 1)}}
	resp.SetEdns0(1232, false)
	wire, err := resp.Pack()
	if err != nil {
		return err
	}
	return serveHTTP(ctx, addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/dns-message")
		w.Write(wire)
	}), coalesced, portaH2)
}

func writeCert(dir string) error {
	certPEM, keyPEM, err := selfsigned.Generate("localhost", "127.0.0.1")
	if err != nil {
		return err
	}
	return errors.Join(os.WriteFile(dir+"/cert.pem", certPEM, 0o600), os.WriteFile(dir+"/key.pem", keyPEM, 0o600))
}
