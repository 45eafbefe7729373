package main

import (
	"flag"
	"fmt"
	"github.com/porta443/porta/internal/sameport"
	"net"
	"sync"
	"time"
)

// cmdDelay is a userspace delay proxy (netem is not available): it
// forwards TCP and UDP on one port to -to, holding every chunk or datagram
// for -delay in each direction, so the round trip grows by twice -delay.
func cmdDelay(args []string) error {
	fs := flag.NewFlagSet("delay", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (TCP and UDP)")
	to := fs.String("to", "", "upstream address")
	delay := fs.Duration("delay", 25*time.Millisecond, "one-way delay")
	fs.Parse(args)
	ln, pc, err := sameport.Listen(*addr)
	if err != nil {
		return err
	}
	fmt.Printf("addr=%s\n", ln.Addr())
	go delayUDP(pc.(*net.UDPConn), *to, *delay)
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go delayTCP(c.(*net.TCPConn), *to, *delay)
	}
}

type chunk struct {
	at   time.Time
	data []byte // nil: EOF
}

func delayTCP(c *net.TCPConn, to string, delay time.Duration) {
	defer c.Close()
	u, err := net.Dial("tcp", to)
	if err != nil {
		return
	}
	up := u.(*net.TCPConn)
	defer up.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); delayPipe(up, c, delay) }()
	go func() { defer wg.Done(); delayPipe(c, up, delay) }()
	wg.Wait()
}

// delayPipe copies src to dst, each chunk delivered delay after it was read.
func delayPipe(dst, src *net.TCPConn, delay time.Duration) {
	q := make(chan chunk, 4096)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 64<<10)
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{time.Now(), buf[:n]}
			}
			if err != nil {
				q <- chunk{at: time.Now()}
				return
			}
		}
	}()
	for ch := range q {
		time.Sleep(time.Until(ch.at.Add(delay)))
		if ch.data == nil {
			dst.CloseWrite()
			continue
		}
		if _, err := dst.Write(ch.data); err != nil {
			src.Close()
			for range q {
			}
			return
		}
	}
}

type datagram struct {
	at   time.Time
	data []byte
	to   net.Addr // nil: upstream
	up   *net.UDPConn
}

func delayUDP(pc *net.UDPConn, to string, delay time.Duration) {
	upAddr, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		return
	}
	q := make(chan datagram, 16384)
	go func() {
		for d := range q {
			time.Sleep(time.Until(d.at.Add(delay)))
			if d.to == nil {
				d.up.Write(d.data)
			} else {
				pc.WriteTo(d.data, d.to)
			}
		}
	}()
	var mu sync.Mutex
	ups := map[string]*net.UDPConn{}
	for {
		buf := make([]byte, 2048)
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		mu.Lock()
		up := ups[from.String()]
		if up == nil {
			up, err = net.DialUDP("udp", nil, upAddr)
			if err != nil {
				mu.Unlock()
				continue
			}
			ups[from.String()] = up
			go func(up *net.UDPConn, client net.Addr) {
				for {
					b := make([]byte, 2048)
					n, err := up.Read(b)
					if err != nil {
						return
					}
					q <- datagram{at: time.Now(), data: b[:n], to: client}
				}
			}(up, from)
		}
		mu.Unlock()
		q <- datagram{at: time.Now(), data: buf[:n], up: up}
	}
}
