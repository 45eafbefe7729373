package testenv

import (
	"bytes"
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// TestFirstFlightShowsTheServerName: the first flights FirstFlight records
// hold the ClientHello a client sent, over TCP and over QUIC, and Hello*
// read its server name out of them. (The tests that check a name is
// missing from a first flight rely on this.)
func TestFirstFlightShowsTheServerName(t *testing.T) {
	cert := NewCertFor(t, "visible-name.test")
	conf := &tls.Config{Certificates: []tls.Certificate{cert.TLS}, NextProtos: []string{"test"}}
	ff := NewFirstFlight(t, HandshakeServer(t, conf))

	client := cert.ClientTLS("test")
	client.ServerName = "visible-name.test"
	c, err := tls.Dial("tcp", ff.Addr, client)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	qc, err := quic.DialAddr(ctx, ff.Addr, client, nil)
	if err != nil {
		t.Fatal(err)
	}
	qc.CloseWithError(0, "")

	flights := ff.TCP()
	if len(flights) != 1 {
		t.Fatalf("%d TCP first flights, want 1", len(flights))
	}
	h, raw, err := HelloFromTLS(flights[0])
	if err != nil || h.ServerName != "visible-name.test" || !bytes.Contains(flights[0], []byte("visible-name.test")) || len(raw) < 100 {
		t.Errorf("TCP: %+v %v", h, err)
	}
	datagrams := ff.UDP()
	if len(datagrams) != 1 {
		t.Fatalf("%d UDP first flights, want 1", len(datagrams))
	}
	if bytes.Contains(bytes.Join(datagrams[0], nil), []byte("visible-name")) {
		t.Error("the QUIC Initial shows the name without decrypting it")
	}
	h, raw, err = HelloFromQUIC(datagrams[0])
	if err != nil || h.ServerName != "visible-name.test" || !bytes.Contains(raw, []byte("visible-name.test")) {
		t.Errorf("QUIC: %+v %v", h, err)
	}
}
