package httpproxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/porta443/porta/internal/relay/relaytest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type recordingDial = relaytest.RecordingDial

// startServer serves cfg on 127.0.0.1 and returns its address.
func startServer(t *testing.T, cfg Config) string { return relaytest.Start(t, New, cfg) }

var dialProxy = relaytest.Dial

// connect sends a CONNECT (and extra bytes with it) and returns the
// response and a reader positioned after its header.
func connect(t *testing.T, c net.Conn, target string, extra []byte) (*http.Response, *bufio.Reader) {
	t.Helper()
	req := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n"
	if _, err := c.Write(append([]byte(req), extra...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	return resp, br
}

func mustEqual(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}

// readResponse reads one response to a GET from c.
func readResponse(t *testing.T, c net.Conn) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// readToClose reads r until the proxy closes the connection, and fails
// the test if the connection's deadline ends the read instead.
func readToClose(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection was not closed; got %q", b)
	}
	return b
}
