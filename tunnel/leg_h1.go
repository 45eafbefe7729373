package tunnel

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"
)

// h1Leg is a hijacked HTTP/1.1 connection.
type h1Leg struct {
	conn net.Conn
	br   *bufio.Reader // may hold bytes the client sent after CONNECT
}

func hijackLeg(w http.ResponseWriter) (clientLeg, error) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, fmt.Errorf("tunnel: hijack: %w", err)
	}
	conn.SetDeadline(time.Time{})
	if _, err := conn.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		conn.Close()
		return nil, fmt.Errorf("tunnel: writing 200: %w", err)
	}
	return &h1Leg{conn: conn, br: brw.Reader}, nil
}

func (l *h1Leg) Read(p []byte) (int, error) { return l.br.Read(p) }
func (l *h1Leg) Write(p []byte) error {
	_, err := l.conn.Write(p)
	return err
}

func (l *h1Leg) CloseWrite() bool {
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := l.conn.(closeWriter); ok {
		cw.CloseWrite() // TLS close_notify or TCP FIN; reading goes on
		return true
	}
	return false
}

func (l *h1Leg) StopRead() { l.conn.SetReadDeadline(time.Now()) }

func (l *h1Leg) Abort() {
	nc := l.conn
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	if tc, ok := nc.(interface{ SetLinger(int) error }); ok {
		tc.SetLinger(0) // a reset, not a clean close
	}
	nc.Close()
}

func (l *h1Leg) Finish() { l.conn.Close() }
