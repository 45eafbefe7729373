package socks5

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/porta443/porta/internal/relay"
)

// lingerTime is how long a failed connection is drained after its error
// reply, so that closing it with unread input does not reset the reply
// away before the client reads it.
const lingerTime = time.Second

// serveConn runs one client connection; c is closed by the caller.
func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	log := s.log.With("client", c.RemoteAddr().String())
	c.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	q, err := s.handshake(c)
	if err != nil {
		var pe *protocolError
		if errors.As(err, &pe) {
			s.fail(c, pe.reply)
		}
		log.Debug("socks5: handshake", "err", err)
		return
	}
	if q.cmd == cmdAssociate {
		s.associate(ctx, c, q, log)
		return
	}
	log = log.With("target", q.address())

	dctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	target, err := s.cfg.Dial(dctx, "tcp", q.address())
	if err == nil && s.cfg.NoFastOpen {
		if err = establishedOrClose(dctx, target); err != nil {
			target = nil
		}
	}
	cancel()
	if err != nil {
		code := ReplyCode(err)
		log.Debug("socks5: dial", "err", err, "reply", code)
		c.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
		s.fail(c, code)
		return
	}

	var bound netip.AddrPort // fast open: 0.0.0.0:0
	if s.cfg.NoFastOpen {
		if a, ok := target.LocalAddr().(*net.TCPAddr); ok {
			bound = a.AddrPort()
		}
	}
	c.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	if _, err := c.Write(appendReply(nil, ReplySucceeded, bound)); err != nil {
		target.Close()
		log.Debug("socks5: reply", "err", err)
		return
	}
	c.SetDeadline(time.Time{})
	if err := s.relay.Run(ctx, c, target); err != nil {
		log.Debug("socks5: relay", "err", err)
	}
}

func establishedOrClose(ctx context.Context, c net.Conn) error {
	if err := relay.Established(ctx, c); err != nil {
		c.Close()
		return fmt.Errorf("socks5: %w", err)
	}
	return nil
}

// handshake reads the greeting, authenticates and reads the request.
func (s *Server) handshake(c net.Conn) (request, error) {
	methods, err := readGreeting(c)
	if err != nil {
		return request{}, err
	}
	want := byte(methodNone)
	if s.auth != nil {
		want = methodUserPwd
	}
	if !slices.Contains(methods, want) {
		c.Write([]byte{version5, methodNoneOK})
		return request{}, fmt.Errorf("socks5: no acceptable method in %x", methods)
	}
	if _, err := c.Write([]byte{version5, want}); err != nil {
		return request{}, fmt.Errorf("socks5: greeting reply: %w", err)
	}
	if s.auth != nil {
		user, pass, err := readUserPass(c)
		if err != nil {
			if errors.Is(err, errAuthVersion) {
				c.Write([]byte{authVersion, 0x01})
			}
			return request{}, err
		}
		if !s.auth(user, pass) {
			c.Write([]byte{authVersion, 0x01})
			return request{}, fmt.Errorf("socks5: user %q: bad credentials", user)
		}
		if _, err := c.Write([]byte{authVersion, 0x00}); err != nil {
			return request{}, fmt.Errorf("socks5: auth reply: %w", err)
		}
	}
	return readRequest(c)
}

// fail sends an error reply and closes the sending side, then drains what
// the client sent for a moment, so that the reply is not lost to a reset.
func (s *Server) fail(c net.Conn, code byte) {
	if _, err := c.Write(appendReply(nil, code, netip.AddrPort{})); err != nil {
		return
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		c.SetReadDeadline(time.Now().Add(lingerTime))
		io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}
}
