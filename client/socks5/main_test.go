package socks5

import (
	"bytes"
	"testing"

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

// startServer serves cfg on 127.0.0.1 and returns its address.
func startServer(t *testing.T, cfg Config) string { return relaytest.Start(t, New, cfg) }

var dialSOCKS = relaytest.Dial

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
