package main

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/porta443/porta/internal/relay/relaytest"
	"github.com/porta443/porta/internal/testenv"
	"github.com/porta443/porta/tunnel"
)

// TestEmbed runs the example's server on loopback and uses each face: the
// program's own page, DoH (answered by a loopback upstream), and a tunnel
// to a loopback echo over HTTP/2.
func TestEmbed(t *testing.T) {
	cert := testenv.NewCert(t)
	up := testenv.NewUpstream(t, map[string][]string{"www.example.test": {"192.0.2.7"}})
	f, err := newFaces(faceConfig{
		Site:         website(),
		Upstreams:    []string{up.URL()},
		Users:        []string{"alice:alice-token"},
		AllowPrivate: true, // the echo target is on loopback
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := newHTTPServer(f, cert.TLS)
	served := make(chan error, 1)
	go func() { served <- hs.ServeTLS(ln, "", "") }()
	defer func() {
		hs.Shutdown(context.Background())
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("ServeTLS: %v", err)
		}
	}()
	base := "https://" + ln.Addr().String()
	tr := &http.Transport{TLSClientConfig: cert.ClientTLS(), ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	if body := get(t, client, base+"/"); body != "hello from the program's own site\n" {
		t.Errorf("site: %q", body)
	}

	q := new(dns.Msg).SetQuestion("www.example.test.", dns.TypeA)
	q.Id = 0
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	var answer dns.Msg
	if err := answer.Unpack([]byte(get(t, client, base+"/dns-query?dns="+base64.RawURLEncoding.EncodeToString(wire)))); err != nil {
		t.Fatal(err)
	}
	if len(answer.Answer) != 1 || answer.Answer[0].(*dns.A).A.String() != "192.0.2.7" {
		t.Errorf("DoH answer: %v", answer.Answer)
	}

	d, err := tunnel.NewDialer(tunnel.DialerConfig{
		Servers:   []string{"https://alice:alice-token@" + ln.Addr().String()},
		RootCAs:   cert.Pool,
		Transport: "h2",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c, err := d.DialContext(t.Context(), "tcp", relaytest.EchoTarget(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "ping"); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("tunnel echo: %q, %v", got, err)
	}
}

func get(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	return string(body)
}
