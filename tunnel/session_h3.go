package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// h3Session is one QUIC connection to a server, speaking HTTP/3.
type h3Session struct {
	slots
	d    *Dialer
	si   *serverInfo
	conn *quic.Conn
	cc   *http3.ClientConn
}

func (d *Dialer) connectH3(ctx context.Context, si *serverInfo) (*h3Session, error) {
	tlsConf := tlsConfig(ctx, si)
	tlsConf.NextProtos = []string{http3.NextProtoH3}
	addr, err := d.serverAddr(ctx, si)
	if err != nil {
		return nil, fmt.Errorf("h3: %w", err)
	}
	conn, err := quic.DialAddr(ctx, addr, tlsConf, d.cfg.QUIC.Clone())
	if err != nil {
		return nil, fmt.Errorf("h3: %w", err)
	}
	cc := (&http3.Transport{}).NewClientConn(conn)
	return &h3Session{d: d, si: si, conn: conn, cc: cc}, nil
}

func (s *h3Session) alive() bool   { return s.conn.Context().Err() == nil }
func (s *h3Session) proto() string { return "h3" }
func (s *h3Session) close() error {
	return s.conn.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeNoError), "")
}
func (s *h3Session) newConn(target string) net.Conn                      { return newTunnelConn(s.d, s, target) }
func (s *h3Session) roundTrip(req *http.Request) (*http.Response, error) { return s.cc.RoundTrip(req) }

func (s *h3Session) open(ctx context.Context, target string) (clientStream, error) {
	rs, err := s.cc.OpenRequestStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("tunnel: h3 stream: %w", err)
	}
	if err := rs.SendRequestHeader(connectRequest(ctx, s.si, target)); err != nil {
		rs.CancelRead(quic.StreamErrorCode(http3.ErrCodeRequestCanceled))
		rs.CancelWrite(quic.StreamErrorCode(http3.ErrCodeRequestCanceled))
		return nil, fmt.Errorf("tunnel: h3 CONNECT: %w", err)
	}
	return &h3ClientStream{RequestStream: rs}, nil
}

// h3ClientStream is a CONNECT stream on an HTTP/3 connection.
type h3ClientStream struct {
	*http3.RequestStream
	once    sync.Once
	respErr error
	wclosed atomic.Bool
}

func (st *h3ClientStream) response(context.Context) error {
	st.once.Do(func() {
		resp, err := st.ReadResponse()
		if err != nil {
			st.respErr = fmt.Errorf("tunnel: CONNECT: %w", err)
			return
		}
		st.respErr = checkResponse(resp)
	})
	return st.respErr
}

func (st *h3ClientStream) Write(p []byte) (int, error) {
	n, err := st.RequestStream.Write(p)
	if err != nil {
		var se *quic.StreamError
		if errors.As(err, &se) && se.Remote {
			// The server stopped reading: it refused, most likely.
			if rerr := st.response(context.Background()); rerr != nil {
				return n, rerr
			}
		}
	}
	return n, err
}

func (st *h3ClientStream) CloseWrite() error {
	st.wclosed.Store(true)
	return st.RequestStream.Close()
}

func (st *h3ClientStream) Close() error {
	st.CancelRead(quic.StreamErrorCode(http3.ErrCodeRequestCanceled))
	if !st.wclosed.Load() {
		st.CancelWrite(quic.StreamErrorCode(http3.ErrCodeRequestCanceled))
	}
	return nil
}
