package tunnel

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/porta443/porta/internal/testenv"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// TestEarlyDataRefused: a CONNECT sent in QUIC 0-RTT (replayable by anyone
// who recorded it) is refused with 425 even with valid credentials, while
// the same CONNECT after the handshake is tunneled.
func TestEarlyDataRefused(t *testing.T) {
	ts := newTunnelServerOpts(t, HandlerConfig{AllowPrivate: true}, serverOpts{quic: func(c *quic.Config) { c.Allow0RTT = true }})
	target := echoTarget(t)
	tlsConf := ts.cert.ClientTLS(http3.NextProtoH3)
	tickets := testenv.NewTicketCache()
	tlsConf.ClientSessionCache = tickets
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	connect := func(conn *quic.Conn) *http.Response {
		t.Helper()
		cc := (&http3.Transport{}).NewClientConn(conn)
		rs, err := cc.OpenRequestStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		req := connectRequest(ctx, &serverInfo{addr: ts.addr, auth: basicAuth(testUser, testToken)}, target)
		if err := rs.SendRequestHeader(req); err != nil {
			t.Fatal(err)
		}
		resp, err := rs.ReadResponse()
		if err != nil {
			t.Fatal(err)
		}
		rs.CancelRead(0)
		rs.CancelWrite(0)
		return resp
	}

	// A full handshake first: a tunnel, and a session ticket.
	conn, err := quic.DialAddr(ctx, ts.addr, tlsConf, ClientQUICConfig())
	if err != nil {
		t.Fatal(err)
	}
	if resp := connect(conn); resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT after the handshake: %d", resp.StatusCode)
	}
	tickets.Wait(t) // it comes after the handshake
	conn.CloseWithError(0, "")

	// On loopback the handshake may finish before the request leaves, which
	// then goes in 1-RTT packets and is rightly tunneled: try a few times
	// for one that the server receives in 0-RTT.
	for try := 0; ; try++ {
		early, err := quic.DialAddrEarly(ctx, ts.addr, tlsConf, ClientQUICConfig())
		if err != nil {
			t.Fatal(err)
		}
		resp := connect(early)
		used := early.ConnectionState().Used0RTT
		early.CloseWithError(0, "")
		if !used {
			t.Fatal("the second connection did not use 0-RTT; the test proves nothing")
		}
		if resp.StatusCode == http.StatusTooEarly && strings.Contains(resp.Header.Get("Proxy-Status"), "http_request_denied") {
			return
		}
		if resp.StatusCode != http.StatusOK || try == 9 {
			t.Fatalf("CONNECT in 0-RTT: %d %q, want 425 with Proxy-Status", resp.StatusCode, resp.Header.Get("Proxy-Status"))
		}
	}
}
