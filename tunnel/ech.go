package tunnel

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
)

// ECH sets up Encrypted Client Hello on a Dialer's connections: the
// server's name travels encrypted in the inner ClientHello, and only the
// config's public name goes in the clear, over TCP and QUIC alike.
type ECH struct {
	// ConfigList returns the ECHConfigList for a server, given the host
	// and port of its URL, or nil to connect without ECH (the server
	// publishes none). It is asked on each connect to a server for which
	// no list has worked yet, or since the last one failed; an error is
	// logged and taken as no list.
	ConfigList func(ctx context.Context, host, port string) ([]byte, error)
	// AllowPlain lets the Dialer connect with a plain ClientHello, the
	// server's name in the clear, when ECH fails: the server rejected it
	// even with the retry configs it gave, or gave none. It is logged
	// either way.
	AllowPlain bool
}

// echServer is what a Dialer keeps of ECH per server.
type echServer struct {
	list []byte // the ECHConfigList that last worked, or nil
	// roots, with a pin, hold the server's certificates seen to match
	// it: a rejected handshake's certificate (for the public name) is
	// checked against them, crypto/tls giving the callback for that,
	// EncryptedClientHelloRejectionVerify, no certificates to look at.
	roots *x509.CertPool
}

// echAttempt is one connect's use of ECH, carried to the handshakes in
// the connect's context so that the transports' signatures stay as they
// are: the list to offer (nil: none), the roots for a pinned server, and
// whether a handshake saw ECH accepted (ConnectionState().ECHAccepted).
type echAttempt struct {
	list     []byte
	roots    *x509.CertPool
	accepted atomic.Bool
}

type echKey struct{}

// tlsConfig is si's TLS config for one handshake of the connect in ctx:
// with the ECH list that connect offers, if any. When the server rejects
// ECH, crypto/tls checks the certificate of the handshake for the
// config's public name, as si's checks go: against RootCAs (the system's
// when nil), against the certificates seen to match a pin, or not at all
// with Insecure.
func tlsConfig(ctx context.Context, si *serverInfo) *tls.Config {
	c := si.tls.Clone()
	at, _ := ctx.Value(echKey{}).(*echAttempt)
	if at == nil {
		return c
	}
	if at.list != nil {
		c.EncryptedClientHelloConfigList = at.list
		switch {
		case pinned(si):
			c.RootCAs = at.roots
		case si.tls.InsecureSkipVerify:
			c.EncryptedClientHelloRejectionVerify = func(tls.ConnectionState) error { return nil }
		}
	}
	verify := c.VerifyConnection
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		at.accepted.Store(cs.ECHAccepted)
		if verify != nil {
			return verify(cs)
		}
		return nil
	}
	return c
}

// pinned reports whether si is trusted by a pin, which parseServer checks
// in VerifyConnection.
func pinned(si *serverInfo) bool { return si.tls.VerifyConnection != nil }

// connectECH connects to si with connect, with ECH when the Dialer has
// it: the list that last worked for si, else the one ConfigList gives;
// once more with the server's retry configs if it rejects that; and
// without ECH only when there is no list at all, or AllowPlain allows it.
func (d *Dialer) connectECH(ctx context.Context, si *serverInfo, connect func(context.Context, *serverInfo) (session, error)) (session, error) {
	e := d.cfg.ECH
	if e == nil {
		return d.connectWith(ctx, si, nil, connect)
	}
	d.mu.Lock()
	list := si.ech.list
	d.mu.Unlock()
	if list == nil {
		host, port, _ := net.SplitHostPort(si.addr)
		var err error
		if list, err = e.ConfigList(ctx, host, port); list == nil {
			attrs := []any{"server", si.addr}
			if err != nil {
				attrs = append(attrs, "err", err)
			}
			d.log.Info("no ECH config for the server; its name goes in the clear", attrs...)
			return d.connectWith(ctx, si, nil, connect)
		}
	}
	s, err := d.connectWith(ctx, si, list, connect)
	if d.learnPinned(si, err) {
		s, err = d.connectWith(ctx, si, list, connect)
	}
	rej, rejected := errors.AsType[*tls.ECHRejectionError](err)
	if rejected && len(rej.RetryConfigList) > 0 {
		d.log.Info("the server replaced its ECH config; trying the new one", "server", si.addr)
		s, err = d.connectWith(ctx, si, rej.RetryConfigList, connect)
		_, rejected = errors.AsType[*tls.ECHRejectionError](err)
	}
	if !rejected {
		return s, err
	}
	d.mu.Lock()
	si.ech.list = nil // ask ConfigList again next time
	d.mu.Unlock()
	if !e.AllowPlain {
		d.log.Warn("the server rejected ECH; not connecting without it", "server", si.addr)
		return nil, fmt.Errorf("the server rejected ECH, and a plain ClientHello is not allowed: %w", err)
	}
	d.log.Warn("the server rejected ECH; connecting without it, its name in the clear", "server", si.addr)
	return d.connectWith(ctx, si, nil, connect)
}

// learnPinned reports whether err is a pinned server's rejection of ECH
// that failed only because its certificate was not among the roots yet:
// it matches the pin, and is added to them.
func (d *Dialer) learnPinned(si *serverInfo, err error) bool {
	cve, ok := errors.AsType[*tls.CertificateVerificationError](err)
	if !ok || !pinned(si) || len(cve.UnverifiedCertificates) == 0 {
		return false
	}
	if si.tls.VerifyConnection(tls.ConnectionState{PeerCertificates: cve.UnverifiedCertificates}) != nil {
		return false // not the pinned key
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	roots := x509.NewCertPool()
	if si.ech.roots != nil {
		roots = si.ech.roots.Clone() // an earlier handshake may still read the old one
	}
	roots.AddCert(cve.UnverifiedCertificates[0])
	si.ech.roots = roots
	return true
}

// tlsVerdict reports whether err is the server's TLS answer rather than a
// failure of the transport: a rejection of ECH, or a certificate the
// client does not trust. Over the other transport it would be the same.
func tlsVerdict(err error) bool {
	_, rejected := errors.AsType[*tls.ECHRejectionError](err)
	_, untrusted := errors.AsType[*tls.CertificateVerificationError](err)
	return rejected || untrusted
}

// connectWith makes one connect offering list (nil: no ECH), and notes
// what worked.
func (d *Dialer) connectWith(ctx context.Context, si *serverInfo, list []byte, connect func(context.Context, *serverInfo) (session, error)) (session, error) {
	at := &echAttempt{list: list}
	d.mu.Lock()
	at.roots = si.ech.roots
	d.mu.Unlock()
	if at.roots == nil {
		at.roots = x509.NewCertPool() // none seen yet; never the system's
	}
	s, err := connect(context.WithValue(ctx, echKey{}, at), si)
	if err != nil {
		return nil, err
	}
	d.echAccepted.Store(at.accepted.Load())
	if list != nil {
		d.mu.Lock()
		si.ech.list = list
		d.mu.Unlock()
		d.log.Info("encrypted client hello accepted", "server", si.addr, "proto", s.proto())
	}
	return s, nil
}

// ECHAccepted reports whether the last connection the Dialer made to a
// server negotiated Encrypted Client Hello: its TLS
// ConnectionState().ECHAccepted.
func (d *Dialer) ECHAccepted() bool { return d.echAccepted.Load() }
