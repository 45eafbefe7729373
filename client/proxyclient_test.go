package client_test

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/porta443/porta/internal/relay/relaytest"
)

// socksOpen asks the SOCKS5 proxy at proxy for host:port (as a name) and
// returns the connection, open, and the reply code.
func socksOpen(t *testing.T, proxy, host string, port uint16) (*net.TCPConn, byte) {
	t.Helper()
	c := relaytest.Dial(t, proxy)
	req := []byte{5, 1, 0, 5, 1, 0, 3, byte(len(host))}
	req = append(req, host...)
	req = binary.BigEndian.AppendUint16(req, port)
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, 2+10)
	if _, err := io.ReadFull(c, reply); err != nil {
		t.Fatalf("SOCKS reply: %v", err)
	}
	return c, reply[3]
}

// socksConnect asks the SOCKS5 proxy for host:port and returns the reply
// code.
func socksConnect(t *testing.T, proxy, host string, port uint16) byte {
	t.Helper()
	c, code := socksOpen(t, proxy, host, port)
	c.Close()
	return code
}

// connectOpen sends the HTTP proxy at proxy a CONNECT to target, and
// first bytes after it, and returns the connection, open, with its
// reader and the proxy's answer.
func connectOpen(t *testing.T, proxy, target, first string) (*net.TCPConn, *bufio.Reader, *http.Response) {
	t.Helper()
	c := relaytest.Dial(t, proxy)
	io.WriteString(c, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n"+first)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("CONNECT %s: %v", target, err)
	}
	return c, br, resp
}

// httpConnect asks the HTTP proxy for a CONNECT to target, sends a request
// through it, and waits for its answer and for the connection to end.
func httpConnect(t *testing.T, proxy, target string) {
	t.Helper()
	c, br, _ := connectOpen(t, proxy, target, "GET /?privacy-query=5 HTTP/1.0\r\n\r\n")
	defer c.Close()
	io.Copy(io.Discard, br)
}
