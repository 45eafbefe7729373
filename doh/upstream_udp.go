package doh

import (
	"context"
	"fmt"
	"time"

	"github.com/miekg/dns"
)

// udpUpstream asks over UDP and again over TCP when the answer is truncated.
type udpUpstream struct {
	addr string
	udp  *dns.Client
	tcp  *streamUpstream
}

func newUDPUpstream(addr string, timeout time.Duration) *udpUpstream {
	return &udpUpstream{
		addr: addr,
		udp:  &dns.Client{Net: "udp", Timeout: timeout},
		tcp:  newStreamUpstream("tcp://"+addr, addr, &dns.Client{Net: "tcp", Timeout: timeout}),
	}
}

func (u *udpUpstream) exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	conn, err := u.udp.DialContext(ctx, u.addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	r, _, err := u.udp.ExchangeWithConnContext(ctx, m, conn)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	if r.Truncated {
		return u.tcp.exchange(ctx, m)
	}
	return r, nil
}

func (u *udpUpstream) close()         { u.tcp.close() }
func (u *udpUpstream) String() string { return "udp://" + u.addr }
