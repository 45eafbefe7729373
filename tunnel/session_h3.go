package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

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
	qconf := d.cfg.QUIC.Clone()
	qconf.EnableDatagrams = true // HTTP Datagrams carry CONNECT-UDP flows
	conn, err := quic.DialAddr(ctx, addr, tlsConf, qconf)
	if err != nil {
		return nil, fmt.Errorf("h3: %w", err)
	}
	cc := (&http3.Transport{EnableDatagrams: true}).NewClientConn(conn)
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
	return &h3ClientStream{RequestStream: rs, answered: make(chan struct{})}, nil
}

// h3ClientStream is a CONNECT stream on an HTTP/3 connection.
type h3ClientStream struct {
	*http3.RequestStream
	wclosed atomic.Bool

	mu       sync.Mutex
	reading  bool          // a response call reads the answer
	cut      bool          // ctx ended that read: the read deadline is in the past
	rdl      time.Time     // the read deadline the caller set
	over     bool          // the read is over
	answered chan struct{} // closed once respErr is set
	respErr  error
}

// response reads the answer once; other calls meanwhile wait for it or
// their ctx. quic-go's ReadResponse has no ctx of its own: a ctx that ends
// while it reads cuts the read short by its deadline, which ends the
// stream (quic-go resets a stream whose HEADERS it could not read), unless
// the answer came first.
func (st *h3ClientStream) response(ctx context.Context) error {
	select {
	case <-st.answered:
		return st.respErr
	default:
	}
	st.mu.Lock()
	if st.reading {
		st.mu.Unlock()
		select {
		case <-st.answered:
			return st.respErr
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	st.reading = true
	st.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		st.mu.Lock()
		defer st.mu.Unlock()
		if !st.over {
			st.cut = true
			st.RequestStream.SetReadDeadline(time.Unix(1, 0))
		}
	})
	resp, err := st.ReadResponse()
	stop()
	st.mu.Lock()
	switch {
	case st.cut && err != nil:
		st.respErr = ctx.Err()
	case err != nil:
		st.respErr = connectErr(ctx, err)
	default:
		st.respErr = checkResponse(resp)
	}
	if st.cut { // the answer came as ctx ended: the caller's deadline again
		st.cut = false
		st.RequestStream.SetReadDeadline(st.rdl)
	}
	st.over = true
	close(st.answered)
	st.mu.Unlock()
	return st.respErr
}

func (st *h3ClientStream) SetReadDeadline(t time.Time) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.rdl = t
	if st.cut {
		return nil // set once the read that was cut is over
	}
	return st.RequestStream.SetReadDeadline(t)
}

// SetDeadline is net.Conn's, through SetReadDeadline.
func (st *h3ClientStream) SetDeadline(t time.Time) error {
	st.SetReadDeadline(t)
	return st.SetWriteDeadline(t)
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
