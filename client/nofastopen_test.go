package client_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/porta443/porta/client"
)

func closedPort(t *testing.T) uint16 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return uint16(port)
}

// TestNoFastOpenCarriesTunnelErrors: with fast open off, the SOCKS reply
// and the HTTP CONNECT status say why the server could not connect; with
// it on, the reply is success at once and the error closes the connection.
func TestNoFastOpenCarriesTunnelErrors(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		slow := newStackWith(t, func(s *stack, cfg *client.Config) { setTransport(cfg, transport); cfg.NoFastOpen = true })
		port := closedPort(t)
		for _, tc := range []struct {
			host string
			want byte
		}{
			{"files.example.test", 0x05}, // connection refused
			{"nx.example.test", 0x04},    // host unreachable: no such name
		} {
			if got := socksConnect(t, slow.socksAddr, tc.host, port); got != tc.want {
				t.Errorf("no fast open, %s: reply %#x, want %#x", tc.host, got, tc.want)
			}
		}
		c, err := net.Dial("tcp", slow.httpAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "CONNECT files.example.test:"+itoa(port)+" HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusBadGateway {
			t.Errorf("HTTP CONNECT to a closed port: %v %v, want 502", resp, err)
		}

		fast := newStack(t, transport)
		if got := socksConnect(t, fast.socksAddr, "files.example.test", port); got != 0 {
			t.Errorf("fast open: reply %#x, want success", got)
		}
	})
}

func itoa(n uint16) string { return strconv.Itoa(int(n)) }
