package httpproxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/porta443/porta/internal/relay"
)

// established is the answer to a CONNECT whose tunnel is open.
const established = "HTTP/1.1 200 Connection established\r\n\r\n"

// connect serves CONNECT host:port: dial, hijack, 200, relay.
func (s *Server) connect(w http.ResponseWriter, r *http.Request) {
	log := s.log.With("client", r.RemoteAddr, "target", r.Host)
	if r.ProtoMajor != 1 {
		http.Error(w, "CONNECT over HTTP/2 is not served here", http.StatusHTTPVersionNotSupported)
		return
	}
	address, err := targetAddress(r.Host, "")
	if err != nil {
		log.Debug("httpproxy: connect", "err", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	dctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	target, err := s.cfg.Dial(dctx, "tcp", address)
	if err == nil && s.cfg.NoFastOpen {
		if err = relay.Established(dctx, target); err != nil {
			target.Close()
		}
	}
	cancel()
	if err != nil {
		log.Debug("httpproxy: dial", "err", err)
		status, reason := statusFor(err)
		w.Header().Set("Connection", "close")
		http.Error(w, reason, status)
		return
	}
	defer target.Close()

	client, buffered, err := http.NewResponseController(w).Hijack()
	if err != nil {
		log.Debug("httpproxy: hijack", "err", err)
		http.Error(w, "cannot hijack", http.StatusInternalServerError)
		return
	}
	client.SetDeadline(time.Now().Add(s.cfg.ReadHeaderTimeout))
	if _, err := client.Write([]byte(established)); err != nil {
		client.Close()
		log.Debug("httpproxy: connect reply", "err", err)
		return
	}
	client.SetDeadline(time.Time{})
	if n := buffered.Reader.Buffered(); n > 0 { // sent by the client with the CONNECT
		client = &prefixConn{Conn: client, r: io.MultiReader(io.LimitReader(buffered.Reader, int64(n)), client)}
	}
	if err := s.relay.Run(ctx, client, target); err != nil {
		log.Debug("httpproxy: relay", "err", err)
	}
}

// prefixConn reads what was buffered before the connection itself.
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// SetLinger sets the underlying connection's linger, if it has one.
func (c *prefixConn) SetLinger(sec int) error {
	if l, ok := c.Conn.(interface{ SetLinger(int) error }); ok {
		return l.SetLinger(sec)
	}
	return fmt.Errorf("httpproxy: %T has no linger", c.Conn)
}

// CloseWrite half-closes the underlying connection, if it can.
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("httpproxy: %T cannot half-close", c.Conn)
}
