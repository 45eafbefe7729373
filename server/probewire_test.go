package server_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porta443/porta/internal/h2/h2test"
	"github.com/porta443/porta/internal/testenv"
	"github.com/porta443/porta/server"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/quic-go/qlog"
	"github.com/quic-go/quic-go/qlogwriter"
	"golang.org/x/net/http2"
)

// A server with users and the same server without them, side by side, as
// a prober without credentials sees them on the wire: every frame of an
// HTTP/2 answer and its fields in order (the tunnel tests compare status,
// fields and body), TLS (ALPN, version, suite, session resumption) and
// QUIC's transport parameters. None may differ.

func basic(user, token string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+token))
}

// probePair is a porta server with a user and one without, on loopback.
func probePair(t *testing.T) (withUsers, without *running) {
	return start(t, server.Config{Users: []string{"alice:alice-token"}}, false), start(t, server.Config{}, false)
}

func TestProbesSeeTheSameFrames(t *testing.T) {
	withUsers, without := probePair(t)
	field := func(kv ...string) []string { return kv }
	for name, fields := range map[string][]string{
		"CONNECT, no credentials": field(":method", "CONNECT", ":authority", "example.com:443"),
		"CONNECT, wrong token":    field(":method", "CONNECT", ":authority", "example.com:443", "proxy-authorization", basic("alice", "wrong")),
		"CONNECT, unknown user":   field(":method", "CONNECT", ":authority", "example.com:443", "proxy-authorization", basic("mallory", "x")),
		"CONNECT, garbled":        field(":method", "CONNECT", ":authority", "example.com:443", "proxy-authorization", "Basic !!!"),
		"GET, another host, wrong token": field(":method", "GET", ":scheme", "https", ":authority", "example.com", ":path", "/",
			"proxy-authorization", basic("alice", "wrong")),
		"GET, the site":       field(":method", "GET", ":scheme", "https", ":authority", "localhost", ":path", "/"),
		"GET, a missing page": field(":method", "GET", ":scheme", "https", ":authority", "localhost", ":path", "/nothere"),
		"extended CONNECT":    field(":method", "CONNECT", ":protocol", "connect-udp", ":scheme", "https", ":authority", "localhost", ":path", "/.well-known/masque/udp/example.com/443/"),
		"CONNECT-UDP, wrong token": field(":method", "CONNECT", ":protocol", "connect-udp", ":scheme", "https", ":authority", "localhost",
			":path", "/.well-known/masque/udp/example.com/443/", "proxy-authorization", basic("alice", "wrong")),
	} {
		a, b := h2Transcript(t, withUsers.addr, fields), h2Transcript(t, without.addr, fields)
		if !strings.Contains(a, ":status") && !strings.Contains(a, "RST_STREAM") {
			t.Errorf("%s: no answer in\n%s", name, a)
		}
		if a != b {
			t.Errorf("%s: the server with users sends\n%s\nthe one without\n%s", name, a, b)
		}
	}
}

// h2Transcript sends one request (fields, END_STREAM) on a new HTTP/2
// connection and writes down every frame that follows for a moment, Date
// values and the server's own port left out.
func h2Transcript(t *testing.T, addr string, fields []string) string {
	t.Helper()
	c := h2test.Dial(t, addr, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", NextProtos: []string{"h2"}})
	defer c.Close()
	c.WriteSettingsAck()
	if err := c.Headers(1, true, fields...); err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(addr, ":")
	var b strings.Builder
	wait := 5 * time.Second
	for {
		f, err := c.Next(wait)
		if err != nil {
			break
		}
		if h := f.Header(); h.StreamID == 1 && (h.Flags.Has(http2.FlagDataEndStream) || h.Type == http2.FrameRSTStream) {
			// The stream is over: what else comes at once (a reset, a
			// tuning) is read for a moment more.
			wait = 200 * time.Millisecond
		}
		// Alt-Svc names the server's own port.
		b.WriteString(strings.ReplaceAll(h2test.Describe(f), ":"+port+`"`, `:<port>"`) + "\n")
	}
	return b.String()
}

// TestProbesSeeTheSameTLS: ALPN for each offer, the version and suite,
// and whether a session resumes are the same with users and without.
func TestProbesSeeTheSameTLS(t *testing.T) {
	withUsers, without := probePair(t)
	for _, offer := range [][]string{{"h2", "http/1.1"}, {"http/1.1"}, {"h2"}, {"acme-tls/1"}, nil} {
		a, b := tlsFacts(t, withUsers.addr, offer), tlsFacts(t, without.addr, offer)
		t.Logf("ALPN %q: %s", offer, a)
		if a != b {
			t.Errorf("ALPN %q: the server with users: %s; the one without: %s", offer, a, b)
		}
	}
}

// tlsFacts connects twice with one session cache and says what TLS
// chose and whether the second connection resumed.
func tlsFacts(t *testing.T, addr string, alpn []string) string {
	conf := &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", NextProtos: alpn, ClientSessionCache: tls.NewLRUClientSessionCache(2)}
	var facts []string
	for range 2 {
		tc, err := tls.Dial("tcp", addr, conf)
		if err != nil {
			facts = append(facts, "error: "+err.Error())
			continue
		}
		// Reading lets TLS 1.3's session ticket in.
		tc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		tc.Read(make([]byte, 1))
		s := tc.ConnectionState()
		facts = append(facts, fmt.Sprintf("alpn=%q %s %s resumed=%v", s.NegotiatedProtocol, tls.VersionName(s.Version), tls.CipherSuiteName(s.CipherSuite), s.DidResume))
		tc.Close()
	}
	return strings.Join(facts, "; ")
}

// TestProbesSeeTheSameQUIC: the transport parameters a QUIC client is
// sent (connection IDs and the reset token left out: they are random)
// are the same with users and without.
func TestProbesSeeTheSameQUIC(t *testing.T) {
	withUsers, without := probePair(t)
	a, b := quicParams(t, withUsers.addr), quicParams(t, without.addr)
	if a == "" || a != b {
		t.Errorf("the server with users sends\n%s\nthe one without\n%s", a, b)
	}
}

func quicParams(t *testing.T, addr string) string {
	rec := &paramsTrace{}
	conf := &quic.Config{Tracer: func(context.Context, bool, quic.ConnectionID) qlogwriter.Trace { return rec }}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, addr, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", NextProtos: []string{http3.NextProtoH3}}, conf)
	if err != nil {
		t.Fatal(err)
	}
	conn.CloseWithError(0, "")
	return rec.remote()
}

// paramsTrace keeps the transport parameters the peer sent, from quic-go's
// qlog events.
type paramsTrace struct {
	mu     sync.Mutex
	params []qlog.ParametersSet
}

func (p *paramsTrace) AddProducer() qlogwriter.Recorder { return p }
func (p *paramsTrace) Close() error                     { return nil }
func (p *paramsTrace) RecordEvent(e qlogwriter.Event) {
	if ps, ok := e.(qlog.ParametersSet); ok && ps.Initiator == qlog.InitiatorRemote {
		p.mu.Lock()
		p.params = append(p.params, ps)
		p.mu.Unlock()
	}
}

func (p *paramsTrace) remote() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, ps := range p.params {
		ps.OriginalDestinationConnectionID, ps.InitialSourceConnectionID, ps.RetrySourceConnectionID = quic.ConnectionID{}, quic.ConnectionID{}, quic.ConnectionID{}
		ps.StatelessResetToken = nil
		ps.PreferredAddress = nil
		fmt.Fprintf(&b, "%+v\n", ps)
	}
	return b.String()
}

// TestEarlyDataConnectLooksLikeTheSite: an authenticated CONNECT replayed
// in QUIC 0-RTT early data is refused with what the site answers any
// unsafe request in early data (425), with users or without.
func TestEarlyDataConnectLooksLikeTheSite(t *testing.T) {
	withUsers, without := probePair(t)
	a, b := earlyConnect(t, withUsers.addr), earlyConnect(t, without.addr)
	if !strings.HasPrefix(a, "425 ") || a != b {
		t.Fatalf("a CONNECT in 0-RTT: the server with users answers\n%s\nthe one without\n%s", a, b)
	}
}

// earlyConnect sends an authenticated CONNECT in 0-RTT (retrying until one
// goes in early data) and writes down the answer.
func earlyConnect(t *testing.T, addr string) string {
	tickets := testenv.NewTicketCache()
	tlsConf := &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", NextProtos: []string{http3.NextProtoH3}, ClientSessionCache: tickets}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	send := func(conn *quic.Conn) string {
		cc := (&http3.Transport{}).NewClientConn(conn)
		rs, err := cc.OpenRequestStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodConnect, "https://example.com:443", nil)
		req.Host = "example.com:443"
		req.Header.Set("Proxy-Authorization", basic("alice", "alice-token"))
		if err := rs.SendRequestHeader(req); err != nil {
			t.Fatal(err)
		}
		resp, err := rs.ReadResponse()
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		rs.CancelRead(0)
		resp.Header.Del("Date")
		return fmt.Sprintf("%d %v %q", resp.StatusCode, resp.Header, body)
	}
	conn, err := quic.DialAddr(ctx, addr, tlsConf, nil)
	if err != nil {
		t.Fatal(err)
	}
	send(conn) // a full handshake first, for the session ticket
	tickets.Wait(t)
	conn.CloseWithError(0, "")
	for try := 0; try < 10; try++ {
		early, err := quic.DialAddrEarly(ctx, addr, tlsConf, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := send(early)
		used := early.ConnectionState().Used0RTT
		early.CloseWithError(0, "")
		if !used {
			t.Fatal("no 0-RTT: the test proves nothing")
		}
		if strings.HasPrefix(got, "425 ") {
			return got
		}
	}
	return "no request went in early data in 10 tries"
}
