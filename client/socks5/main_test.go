package socks5

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/porta443/porta/internal/relay/relaytest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var (
	listen       = relaytest.Listen
	serveTCP     = relaytest.ServeTCP
	echoTarget   = relaytest.EchoTarget
	dialDirect   = relaytest.DialDirect
	readAll      = relaytest.ReadAll
	payload      = relaytest.Payload
	sourceTarget = relaytest.SourceTarget
)

type recordingDial = relaytest.RecordingDial

// startServer serves cfg on 127.0.0.1 and returns its address. Cleanup
// closes the server and checks that Serve returned ErrServerClosed.
func startServer(t *testing.T, cfg Config) string {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// dialSOCKS connects to the server with a deadline for the whole test.
func dialSOCKS(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c.(*net.TCPConn)
}

// connectMsg builds greeting (no auth) and CONNECT request bytes.
func connectMsg(atyp byte, addr []byte, port uint16) []byte {
	b := []byte{5, 1, 0, 5, 1, 0, atyp}
	if atyp == atypDomain {
		b = append(b, byte(len(addr)))
	}
	b = append(b, addr...)
	return append(b, byte(port>>8), byte(port))
}

func mustEqual(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %x, want %x", what, got, want)
	}
}
