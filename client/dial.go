package client

import (
	"context"
	"errors"
	"net"

	"github.com/porta443/porta/client/socks5"
	"github.com/porta443/porta/tunnel"
)

// tunnelConn is what the tunnel's Dialer returns: a connection that can
// half-close, can wait for the server's answer to its CONNECT, and can
// hand the relay what it received without a copy (copybuf.Chunker).
type tunnelConn interface {
	net.Conn
	CloseWrite() error
	Established(ctx context.Context) error
	CopyChunks(dst func([]byte) error) (int64, error)
}

// dial is the proxies' DialFunc: the tunnel's, with refusals that name
// their SOCKS5 reply code (the HTTP proxy takes the server's status as
// it is), for when fast open is off and the proxies wait for the answer.
func (c *Client) dial(ctx context.Context, network, address string) (net.Conn, error) {
	conn, err := c.dialer.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(tunnelConn); ok {
		return refusalCoder{&countedConn{tunnelConn: tc, c: &c.counts, closed: c.counts.streams.Open()}}, nil
	}
	return conn, nil
}

type refusalCoder struct{ tunnelConn }

func (r refusalCoder) Established(ctx context.Context) error {
	err := r.tunnelConn.Established(ctx)
	if refused, ok := errors.AsType[*tunnel.RefusedError](err); ok {
		return socksRefusal{err: err, refused: refused}
	}
	return err
}

// socksRefusal is a server's refusal with its SOCKS5 reply code, from the
// RFC 9209 Proxy-Status the server sent.
type socksRefusal struct {
	err     error
	refused *tunnel.RefusedError
}

func (s socksRefusal) Error() string    { return s.err.Error() }
func (s socksRefusal) Unwrap() error    { return s.err }
func (s socksRefusal) SOCKSReply() byte { return socks5.ReplyForProxyStatus(s.refused.ProxyStatus) }
