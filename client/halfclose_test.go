package client_test

import (
	"crypto/sha256"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/porta443/porta/internal/relay/relaytest"
)

// TestProxiesHalfClose: through the client's SOCKS5 and HTTP proxies, on
// each transport, whichever side half-closes first, the other goes on
// sending 10 MB, every byte of which arrives (SHA-256), and then
// half-closes too.
func TestProxiesHalfClose(t *testing.T) {
	const size = 10 << 20
	eachTransport(t, func(t *testing.T, transport string) {
		s := newStack(t, transport)
		for _, proxy := range []string{"socks5", "http"} {
			dial := func(t *testing.T, target string) (*net.TCPConn, io.Reader) {
				if proxy == "socks5" {
					host, port, _ := net.SplitHostPort(target)
					n, _ := strconv.Atoi(port)
					c, code := socksOpen(t, s.socksAddr, host, uint16(n))
					if code != 0 {
						t.Fatalf("SOCKS5 reply %d", code)
					}
					return c, c
				}
				c, br, resp := connectOpen(t, s.httpAddr, target, "")
				if resp.StatusCode != 200 {
					t.Fatalf("CONNECT: %s", resp.Status)
				}
				return c, br
			}
			t.Run(proxy+"/target first", func(t *testing.T) {
				data, sum := relaytest.Payload(t, size)
				got := make(chan [32]byte, 1)
				target := relaytest.ServeTCP(t, func(c net.Conn) {
					c.Write([]byte("banner"))
					c.(*net.TCPConn).CloseWrite()
					h := sha256.New()
					io.Copy(h, c)
					got <- [32]byte(h.Sum(nil))
				})
				c, r := dial(t, target)
				if b, err := io.ReadAll(r); err != nil || string(b) != "banner" {
					t.Fatalf("read %q, %v; want the banner, then EOF", b, err)
				}
				if _, err := c.Write(data); err != nil {
					t.Fatalf("writing after the target's EOF: %v", err)
				}
				c.CloseWrite()
				select {
				case s := <-got:
					if s != sum {
						t.Fatal("the target got other bytes than were sent after its FIN")
					}
				case <-time.After(60 * time.Second):
					t.Fatal("the target never got the end of the upload")
				}
			})
			t.Run(proxy+"/client first", func(t *testing.T) {
				data, sum := relaytest.Payload(t, size)
				target := relaytest.ServeTCP(t, func(c net.Conn) {
					if b, _ := io.ReadAll(c); string(b) == "request" {
						c.Write(data)
					}
				})
				c, r := dial(t, target)
				c.Write([]byte("request"))
				c.CloseWrite()
				h := sha256.New()
				if _, err := io.Copy(h, r); err != nil {
					t.Fatalf("reading after the client's FIN: %v", err)
				}
				if [32]byte(h.Sum(nil)) != sum {
					t.Fatal("the client got other bytes than the target sent after the client's FIN")
				}
			})
		}
	})
}
