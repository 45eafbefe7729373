package testenv

import (
	"context"
	"crypto/tls"
	"sync"
	"testing"

	"github.com/porta443/porta/internal/sameport"
	"github.com/quic-go/quic-go"
)

// HandshakeServer serves conf on 127.0.0.1, TLS over TCP and QUIC on one
// port, for tests of handshakes alone: it completes each one and closes
// the connection. It returns the address and stops when the test ends.
func HandshakeServer(t testing.TB, conf *tls.Config) string {
	t.Helper()
	tcp, udp, err := sameport.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsLn := tls.NewListener(tcp, conf)
	quicLn, err := quic.Listen(udp, conf, nil)
	if err != nil {
		tcp.Close()
		udp.Close()
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := tlsLn.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	})
	wg.Go(func() {
		for {
			c, err := quicLn.Accept(context.Background())
			if err != nil {
				return
			}
			c.CloseWithError(0, "")
		}
	})
	t.Cleanup(func() { tlsLn.Close(); quicLn.Close(); udp.Close(); wg.Wait() })
	return tcp.Addr().String()
}
