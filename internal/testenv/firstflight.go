package testenv

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/porta443/porta/internal/sameport"
)

// FirstFlight is a proxy on 127.0.0.1, TCP and UDP on one port, in front
// of a server, that records each client's first flight: what a TCP
// connection sends until the server's first byte comes back, and the
// datagrams a QUIC client sends that begin with an Initial packet (whose
// keys anyone can derive). That is what an observer on the path reads of
// the handshake: the ClientHello.
type FirstFlight struct {
	Addr string // the proxy's host:port

	mu  sync.Mutex
	tcp [][]byte   // one per connection
	udp [][][]byte // one list of datagrams per client address
}

// NewFirstFlight starts a FirstFlight in front of target (host:port, TCP
// and UDP); it stops when the test ends.
func NewFirstFlight(t testing.TB, target string) *FirstFlight {
	t.Helper()
	ln, pc, err := sameport.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &FirstFlight{Addr: ln.Addr().String()}
	var wg sync.WaitGroup
	var conns sync.Map // net.Conn → struct{}: closed at the end
	track := func(c net.Conn) { conns.Store(c, struct{}{}) }
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			track(c)
			wg.Go(func() { f.proxyTCP(c, target, track) })
		}
	})
	wg.Go(func() { f.proxyUDP(pc, target, track, &wg) })
	t.Cleanup(func() {
		ln.Close()
		pc.Close()
		conns.Range(func(c, _ any) bool { c.(net.Conn).Close(); return true })
		wg.Wait()
	})
	return f
}

// TCP are the first flights of the TCP connections so far.
func (f *FirstFlight) TCP() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.tcp...)
}

// UDP are the first flights of the UDP clients so far.
func (f *FirstFlight) UDP() [][][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][][]byte(nil), f.udp...)
}

func (f *FirstFlight) proxyTCP(c net.Conn, target string, track func(net.Conn)) {
	defer c.Close()
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	track(up)
	defer up.Close()
	f.mu.Lock()
	i := len(f.tcp)
	f.tcp = append(f.tcp, nil)
	f.mu.Unlock()
	answered := make(chan struct{})
	var once sync.Once
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				select {
				case <-answered:
				default:
					f.mu.Lock()
					f.tcp[i] = append(f.tcp[i], buf[:n]...)
					f.mu.Unlock()
				}
				if _, werr := up.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				if tc, ok := up.(*net.TCPConn); ok && errors.Is(err, io.EOF) {
					tc.CloseWrite()
				}
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := up.Read(buf)
		if n > 0 {
			once.Do(func() { close(answered) })
			if _, werr := c.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	c.Close()
	<-done
}

func (f *FirstFlight) proxyUDP(pc net.PacketConn, target string, track func(net.Conn), wg *sync.WaitGroup) {
	type client struct {
		up    net.Conn
		index int
	}
	clients := map[string]*client{}
	buf := make([]byte, 65535)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		cl := clients[from.String()]
		if cl == nil {
			up, err := net.Dial("udp", target)
			if err != nil {
				continue
			}
			track(up)
			f.mu.Lock()
			cl = &client{up: up, index: len(f.udp)}
			f.udp = append(f.udp, nil)
			f.mu.Unlock()
			clients[from.String()] = cl
			wg.Go(func() {
				reply := make([]byte, 65535)
				for {
					n, err := up.Read(reply)
					if err != nil {
						return
					}
					pc.WriteTo(reply[:n], from)
				}
			})
		}
		if n > 0 && buf[0]&0xf0 == 0xc0 { // a long header of type Initial
			f.mu.Lock()
			f.udp[cl.index] = append(f.udp[cl.index], append([]byte(nil), buf[:n]...))
			f.mu.Unlock()
		}
		cl.up.Write(buf[:n])
	}
}
