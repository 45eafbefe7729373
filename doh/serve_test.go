package doh

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/porta443/porta/internal/testenv"
	"github.com/quic-go/quic-go/http3"
)

// testServer serves a handler on 127.0.0.1 over TLS with HTTP/1.1 and
// HTTP/2, and over QUIC with HTTP/3, as the porta server does.
type testServer struct {
	Cert    *testenv.Cert
	TCPAddr string // https://TCPAddr for HTTP/1.1 and HTTP/2
	UDPAddr string // HTTP/3
}

func serveTest(t *testing.T, h http.Handler) *testServer {
	t.Helper()
	cert := testenv.NewCert(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	tlsConf := &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
	hs := &http.Server{Handler: h, TLSConfig: tlsConf, Protocols: &protos, ReadHeaderTimeout: 10 * time.Second}
	h3 := &http3.Server{Handler: h, TLSConfig: http3.ConfigureTLSConfig(tlsConf)}
	errc := make(chan error, 2)
	go func() { errc <- hs.ServeTLS(ln, "", "") }()
	go func() { errc <- h3.Serve(pc) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
		h3.Close()
		for range 2 {
			if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				t.Errorf("serve: %v", err)
			}
		}
		pc.Close()
	})
	return &testServer{Cert: cert, TCPAddr: ln.Addr().String(), UDPAddr: pc.LocalAddr().String()}
}

// modes are the HTTP versions every end-to-end test runs over.
var modes = []string{"h1", "h2", "h3"}

// client is an HTTP client for mode and the URL base to use with it.
func (s *testServer) client(t *testing.T, mode string) (*http.Client, string) {
	t.Helper()
	switch mode {
	case "h3":
		tr := &http3.Transport{TLSClientConfig: s.Cert.ClientTLS("h3")}
		t.Cleanup(func() { tr.Close() })
		return &http.Client{Transport: tr, Timeout: 20 * time.Second}, "https://" + s.UDPAddr
	case "h1", "h2":
		var protos http.Protocols
		protos.SetHTTP1(mode == "h1")
		protos.SetHTTP2(mode == "h2")
		tr := &http.Transport{TLSClientConfig: s.Cert.ClientTLS(), Protocols: &protos}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 20 * time.Second}, "https://" + s.TCPAddr
	}
	t.Fatalf("unknown mode %q", mode)
	return nil, ""
}
