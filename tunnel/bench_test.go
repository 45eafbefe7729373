package tunnel

import (
	"io"
	"net"
	"net/http"
	"testing"
)

// BenchmarkThroughput moves b.N bytes-sized chunks (1 MiB each) from a
// target through one tunneled connection, per transport, in-process on
// 127.0.0.1 with the server settings porta uses. bench/tunnel.sh measures
// the real binaries against stunnel4.
func BenchmarkThroughput(b *testing.B) {
	for _, mode := range modes {
		b.Run(mode, func(b *testing.B) {
			ts := newTunnelServer(b, HandlerConfig{AllowPrivate: true})
			chunk := make([]byte, 1<<20)
			target := serveTarget(b, func(c *net.TCPConn) {
				for {
					if _, err := c.Write(chunk); err != nil {
						return
					}
				}
			})
			c := dialVia(b, ts, mode, target)
			defer c.Close()
			c.Write([]byte("go"))
			buf := make([]byte, 256<<10)
			b.SetBytes(int64(len(chunk)))
			b.ResetTimer()
			if _, err := io.CopyBuffer(io.Discard, io.LimitReader(c, int64(b.N)*int64(len(chunk))), buf); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkNewConn opens a tunneled connection over a warm tunnel and
// makes one exchange with an echo target: the cost of a new connection.
func BenchmarkNewConn(b *testing.B) {
	for _, mode := range dialerModes {
		b.Run(mode, func(b *testing.B) {
			ts := newTunnelServer(b, HandlerConfig{AllowPrivate: true})
			target := echoTarget(b)
			d := newDialer(b, ts, mode, testUser, testToken)
			one := make([]byte, 1)
			b.ResetTimer()
			for range b.N {
				c, err := d.Dial("tcp", target)
				if err != nil {
					b.Fatal(err)
				}
				c.Write(one)
				if _, err := io.ReadFull(c, one); err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}

// BenchmarkCredentials is what every request through the Handler pays
// for the credential check (see Handler.credentials), with and without a
// Proxy-Authorization field.
func BenchmarkCredentials(b *testing.B) {
	h, err := NewHandler(HandlerConfig{Users: testUsers(b)})
	if err != nil {
		b.Fatal(err)
	}
	for name, auth := range map[string]string{"none": "", "wrong token": basicAuth(testUser, "wrong-token")} {
		b.Run(name, func(b *testing.B) {
			r, _ := http.NewRequest("GET", "https://localhost/", nil)
			if auth != "" {
				r.Header.Set("Proxy-Authorization", auth)
			}
			b.ReportAllocs()
			for b.Loop() {
				h.credentials(r)
			}
		})
	}
}
