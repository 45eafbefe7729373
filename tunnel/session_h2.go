package tunnel

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// h2Session is one HTTP/2 connection to a server.
type h2Session struct {
	slots
	d  *Dialer
	si *serverInfo
	tr *http.Transport
	cc *http.ClientConn
}

func (d *Dialer) connectH2(ctx context.Context, si *serverInfo) (*h2Session, error) {
	tlsConf := si.tls.Clone()
	tlsConf.NextProtos = []string{"h2"}
	var protos http.Protocols
	protos.SetHTTP2(true)
	tr := &http.Transport{
		TLSClientConfig:     tlsConf,
		Protocols:           &protos,
		HTTP2:               d.cfg.HTTP2,
		TLSHandshakeTimeout: d.cfg.ConnectTimeout,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			addr, err := d.serverAddr(ctx, si)
			if err != nil {
				return nil, err
			}
			return (&net.Dialer{Timeout: d.cfg.ConnectTimeout, KeepAlive: 30 * time.Second}).DialContext(ctx, network, addr)
		},
	}
	cc, err := tr.NewClientConn(ctx, "https", si.addr)
	if err != nil {
		return nil, fmt.Errorf("h2: %w", err)
	}
	return &h2Session{d: d, si: si, tr: tr, cc: cc}, nil
}

func (s *h2Session) alive() bool   { return s.cc.Err() == nil }
func (s *h2Session) proto() string { return "h2" }
func (s *h2Session) close() error {
	err := s.cc.Close()
	s.tr.CloseIdleConnections()
	return err
}
func (s *h2Session) newConn(target string) net.Conn                      { return newTunnelConn(s.d, s, target) }
func (s *h2Session) roundTrip(req *http.Request) (*http.Response, error) { return s.cc.RoundTrip(req) }

func (s *h2Session) open(ctx context.Context, target string) (clientStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	req := connectRequest(ctx, s.si, target)
	req.Body = pr
	req.ContentLength = -1
	st := &h2ClientStream{cancel: cancel, pw: pw, done: make(chan struct{})}
	go func() {
		defer close(st.done)
		st.resp, st.err = s.cc.RoundTrip(req)
		if st.err != nil {
			pr.CloseWithError(st.err)
		}
	}()
	return st, nil
}

// h2ClientStream is a CONNECT stream on an HTTP/2 connection. Its request
// body is a pipe, so the first Write travels right behind the HEADERS.
// net/http's HTTP/2 bodies have no deadlines, so here an expired deadline
// resets the stream rather than only failing the blocked call.
type h2ClientStream struct {
	cancel context.CancelFunc
	pw     *io.PipeWriter
	done   chan struct{} // RoundTrip returned; resp and err are set
	resp   *http.Response
	err    error

	checked  sync.Once
	checkErr error
	timedOut atomic.Bool

	mu     sync.Mutex
	rTimer *time.Timer
	wTimer *time.Timer
}

func (st *h2ClientStream) response() error {
	<-st.done
	st.checked.Do(func() {
		if st.err != nil {
			st.checkErr = fmt.Errorf("tunnel: CONNECT: %w", st.err)
			return
		}
		st.checkErr = checkResponse(st.resp)
	})
	return st.checkErr
}

func (st *h2ClientStream) Write(p []byte) (int, error) {
	n, err := st.pw.Write(p)
	if err != nil {
		err = st.mapErr(err)
	}
	return n, err
}

func (st *h2ClientStream) Read(p []byte) (int, error) {
	n, err := st.resp.Body.Read(p)
	if err != nil && err != io.EOF {
		err = st.mapErr(err)
	}
	return n, err
}

// mapErr prefers the reason the stream ended: a refusal, a deadline.
func (st *h2ClientStream) mapErr(err error) error {
	if st.timedOut.Load() {
		return errTimeout
	}
	select {
	case <-st.done:
		if rerr := st.response(); rerr != nil {
			return rerr
		}
	default:
	}
	return err
}

func (st *h2ClientStream) CloseWrite() error { return st.pw.Close() }

func (st *h2ClientStream) Close() error {
	st.mu.Lock()
	for _, t := range []*time.Timer{st.rTimer, st.wTimer} {
		if t != nil {
			t.Stop()
		}
	}
	st.mu.Unlock()
	st.cancel()
	st.pw.CloseWithError(net.ErrClosed)
	<-st.done
	if st.resp != nil {
		st.resp.Body.Close()
	}
	return nil
}

func (st *h2ClientStream) SetReadDeadline(t time.Time) error {
	st.setDeadline(&st.rTimer, t)
	return nil
}

func (st *h2ClientStream) SetWriteDeadline(t time.Time) error {
	st.setDeadline(&st.wTimer, t)
	return nil
}

func (st *h2ClientStream) setDeadline(timer **time.Timer, t time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if *timer != nil {
		(*timer).Stop()
		*timer = nil
	}
	if t.IsZero() {
		return
	}
	*timer = time.AfterFunc(time.Until(t), func() {
		st.timedOut.Store(true)
		st.cancel()
		st.pw.CloseWithError(errTimeout)
	})
}
