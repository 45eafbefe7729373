package tunnel

import (
	"crypto/sha256"
	"io"
	"net"
	"testing"
	"time"

	"github.com/porta443/porta/internal/relay/relaytest"
)

// halfCloseSize is what goes on flowing after one side half-closed.
const halfCloseSize = 10 << 20

// TestHalfCloseCarriesEverything: whichever side half-closes first, the
// other goes on sending 10 MB through the tunnel, every byte of which
// arrives (SHA-256), and then half-closes too (the client closing at
// once); both sides see EOF once the other is done, and the tunnel ends.
func TestHalfCloseCarriesEverything(t *testing.T) {
	run(t, func(t *testing.T, mode string) {
		ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})

		t.Run("target first", func(t *testing.T) {
			if mode == "h2stdsrv" {
				t.Skip("net/http's HTTP/2 server drops the upload once the response ends (the gap --std-http2 keeps)")
			}
			data, sum := relaytest.Payload(t, halfCloseSize)
			got := make(chan [32]byte, 1)
			target := serveTarget(t, func(c *net.TCPConn) {
				c.Write([]byte("banner"))
				c.CloseWrite()
				h := sha256.New()
				io.Copy(h, c)
				got <- [32]byte(h.Sum(nil))
			})
			c := dialVia(t, ts, mode, target)
			c.SetDeadline(time.Now().Add(60 * time.Second))
			banner, err := io.ReadAll(c)
			if err != nil || string(banner) != "banner" {
				t.Fatalf("read %q, %v; want the banner, then EOF", banner, err)
			}
			if _, err := c.Write(data); err != nil {
				t.Fatalf("writing after the target's EOF: %v", err)
			}
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			// A Close at once loses nothing: what Write took goes out
			// before the stream ends (net/http's client sends it after
			// Write returns; a Close that reset the stream would drop it).
			c.Close()
			select {
			case s := <-got:
				if s != sum {
					t.Fatal("the target got other bytes than the client sent after its FIN")
				}
			case <-time.After(60 * time.Second):
				t.Fatal("the target never got the end of the upload")
			}
			waitIdle(t, ts.h)
		})

		t.Run("client first", func(t *testing.T) {
			data, sum := relaytest.Payload(t, halfCloseSize)
			target := serveTarget(t, func(c *net.TCPConn) {
				b, _ := io.ReadAll(c) // until the client's FIN
				if string(b) != "request" {
					return
				}
				c.Write(data)
			})
			c := dialVia(t, ts, mode, target)
			c.SetDeadline(time.Now().Add(60 * time.Second))
			c.Write([]byte("request"))
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			if _, err := io.Copy(h, c); err != nil {
				t.Fatalf("reading after the client's FIN: %v", err)
			}
			if [32]byte(h.Sum(nil)) != sum {
				t.Fatal("the client got other bytes than the target sent after the client's FIN")
			}
			waitIdle(t, ts.h)
		})
	})
}
