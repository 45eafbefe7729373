// Embed serves porta's faces from a net/http program of its own: the
// program's mux stays the website, DoH answers on /dns-query, and
// authenticated CONNECT requests (HTTP/1.1 and HTTP/2) ride the tunnel,
// all on the one TLS listener the program already has.
//
//	go run ./examples/embed -listen :8443 -cert cert.pem -key key.pem \
//		-upstream udp://127.0.0.1:53 -user alice:$(porta token)
//
// porta server does the same and more (HTTP/3, ACME, metrics); this is
// for a program that owns its listener and wants the faces beside its own
// pages.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/porta443/porta/doh"
	"github.com/porta443/porta/server"
	"github.com/porta443/porta/tunnel"
)

func main() {
	listen := flag.String("listen", ":8443", "TLS `ADDR`ess")
	certFile := flag.String("cert", "", "PEM certificate chain `FILE`")
	keyFile := flag.String("key", "", "PEM key `FILE`")
	upstream := flag.String("upstream", "", "resolver `URL`s, comma-separated: udp://, tcp://, tls:// or https://")
	user := flag.String("user", "", "tunnel users, comma-separated `NAME:TOKEN`s")
	allowPrivate := flag.Bool("allow-private", false, "let tunnels reach loopback and private addresses")
	flag.Parse()

	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatal(err)
	}
	f, err := newFaces(faceConfig{
		Site:         website(),
		Upstreams:    split(*upstream),
		Users:        split(*user),
		AllowPrivate: *allowPrivate,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	hs := newHTTPServer(f, cert)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		hs.Shutdown(shutdown)
	}()
	if err := hs.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// website is the program's own site: whatever it served before.
func website() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from the program's own site\n")
	})
	return mux
}

// faceConfig is what the faces need: the site they stand in front of,
// the resolvers behind DoH and the tunnel's name lookups, and the users.
type faceConfig struct {
	Site         http.Handler
	Upstreams    []string
	Users        []string
	AllowPrivate bool
}

// faces is the handler of porta's faces: the tunnel in front, then the
// router between DoH and the site.
type faces struct {
	http.Handler
	resolver *doh.Resolver
	tunnel   *tunnel.Handler
}

func newFaces(cfg faceConfig) (*faces, error) {
	resolver, err := doh.NewResolver(doh.ResolverConfig{Upstreams: cfg.Upstreams})
	if err != nil {
		return nil, err
	}
	router := &server.Router{DoHPath: "/dns-query", DoH: &doh.Handler{Resolver: resolver}, Site: cfg.Site}
	users, err := tunnel.NewUsers(tunnel.UsersConfig{Users: cfg.Users})
	if err != nil {
		resolver.Close()
		return nil, err
	}
	th, err := tunnel.NewHandler(tunnel.HandlerConfig{
		Next:         router, // what is not an authenticated proxy request, a probe's too
		Users:        users,
		Resolver:     resolver, // never the system's: the upstreams given
		AllowPrivate: cfg.AllowPrivate,
	})
	if err != nil {
		resolver.Close()
		return nil, err
	}
	return &faces{Handler: th, resolver: resolver, tunnel: th}, nil
}

// Close ends the tunnels still open (an HTTP/1.1 CONNECT outlives the
// http.Server's Shutdown) and the resolver.
func (f *faces) Close() error {
	return errors.Join(f.tunnel.Close(), f.resolver.Close())
}

// newHTTPServer serves f over TLS, HTTP/1.1 and HTTP/2.
func newHTTPServer(f *faces, cert tls.Certificate) *http.Server {
	return &http.Server{
		Handler:           f,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       3 * time.Minute,
	}
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
