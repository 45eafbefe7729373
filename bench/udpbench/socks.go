package main

import (
	"context"
	"net"
	"time"

	"github.com/porta443/porta/internal/socksudp"
)

// flow sends datagrams to one target and reads its answers, directly or
// through a SOCKS5 UDP association.
type flow struct {
	direct *net.UDPConn         // nil through SOCKS5
	pc     *socksudp.PacketConn // the association
	target *net.UDPAddr
	in     []byte // what recv reads into
}

func openFlow(socks, target string) (*flow, error) {
	t, err := net.ResolveUDPAddr("udp", target) // an IP literal: nothing to resolve
	if err != nil {
		return nil, err
	}
	f := &flow{target: t, in: make([]byte, 65536)}
	if socks == "" {
		f.direct, err = net.DialUDP("udp", nil, t)
		return f, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f.pc, err = socksudp.Associate(ctx, socks)
	return f, err
}

func (f *flow) send(p []byte) error {
	var err error
	if f.direct != nil {
		_, err = f.direct.Write(p)
	} else {
		_, err = f.pc.WriteTo(p, f.target)
	}
	return err
}

// recv returns the next answer's payload, valid until the next recv.
func (f *flow) recv(deadline time.Time) ([]byte, error) {
	var n int
	var err error
	if f.direct != nil {
		f.direct.SetReadDeadline(deadline)
		n, err = f.direct.Read(f.in)
	} else {
		f.pc.SetReadDeadline(deadline)
		n, _, err = f.pc.ReadFrom(f.in)
	}
	return f.in[:n], err
}

func (f *flow) close() {
	if f.direct != nil {
		f.direct.Close()
		return
	}
	f.pc.Close()
}
