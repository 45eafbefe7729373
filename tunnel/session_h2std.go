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

	"golang.org/x/net/http/httpguts"
)

// stdSession is one HTTP/2 connection to a server on net/http's client
// (DialerConfig.StdHTTP2), kept beside internal/h2 so that the two can be
// compared and either used.
type stdSession struct {
	slots
	d  *Dialer
	si *serverInfo
	tr *http.Transport
	cc *http.ClientConn
	wg sync.WaitGroup // the streams' RoundTrips
}

func (d *Dialer) connectStd(ctx context.Context, si *serverInfo) (*stdSession, error) {
	var protos http.Protocols
	protos.SetHTTP2(true)
	tr := &http.Transport{
		Protocols: &protos,
		HTTP2:     d.cfg.HTTP2,
		DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.dialTLS(ctx, si)
		},
	}
	cc, err := tr.NewClientConn(ctx, "https", si.addr)
	if err != nil {
		return nil, fmt.Errorf("h2: %w", err)
	}
	return &stdSession{d: d, si: si, tr: tr, cc: cc}, nil
}

// alive is false at the server's stream limit too: net/http does not say
// whether a connection that takes no more streams is full or going away,
// so a full one drains, as one going away does, and another is opened.
func (s *stdSession) alive() bool   { return s.cc.Err() == nil && s.cc.Available() > 0 }
func (s *stdSession) proto() string { return "h2" }
func (s *stdSession) close() error {
	err := s.cc.Close()
	s.tr.CloseIdleConnections()
	s.wg.Wait()
	return err
}
func (s *stdSession) newConn(target string) net.Conn { return newTunnelConn(s.d, s, target) }

// roundTrip reserves the stream first, so that a connection that can take
// no more (GOAWAY) fails the request as not processed, as internal/h2 does.
func (s *stdSession) roundTrip(req *http.Request) (*http.Response, error) {
	if err := s.cc.Reserve(); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("h2: %w: %w", errNotProcessed, err)
	}
	return s.cc.RoundTrip(req)
}

// open sends the CONNECT for target. Its request body is a pipe, so that
// the first Write travels right behind the HEADERS; the RoundTrip waits
// for the answer on a goroutine of the stream's, which its Close (or the
// session's) waits for. The request's context is not ctx, whose end
// (the tunnelConn's Close) would cut off an upload net/http is still
// sending: the stream's Close ends it.
func (s *stdSession) open(ctx context.Context, target string) (clientStream, error) {
	if !httpguts.ValidHostHeader(target) {
		return nil, fmt.Errorf("tunnel: invalid target %q", target)
	}
	if err := s.cc.Reserve(); err != nil {
		return nil, fmt.Errorf("tunnel: h2 CONNECT: %w: %w", errNotProcessed, err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	pr, pw := io.Pipe()
	body := &stdRequestBody{PipeReader: pr, done: make(chan struct{})}
	req := connectRequest(ctx, s.si, target)
	req.Body = body
	req.ContentLength = -1
	st := &stdClientStream{cancel: cancel, pw: pw, body: body, done: make(chan struct{})}
	s.wg.Go(func() {
		defer close(st.done)
		st.resp, st.err = s.cc.RoundTrip(req)
		if st.err != nil {
			pr.CloseWithError(st.err)
		}
	})
	return st, nil
}

// stdRequestBody is the pipe net/http reads a CONNECT's upload from; done
// is closed when net/http is through with it: it sent all of it, or gave
// up (the stream or the connection ended).
type stdRequestBody struct {
	*io.PipeReader
	once sync.Once
	done chan struct{}
}

func (b *stdRequestBody) Close() error {
	b.once.Do(func() { close(b.done) })
	return b.PipeReader.Close()
}

// stdClientStream is a CONNECT stream on net/http's HTTP/2 client. net/http's
// HTTP/2 bodies have no deadlines, so here a deadline that passes resets
// the stream rather than only failing the call that waits.
type stdClientStream struct {
	cancel context.CancelFunc
	pw     *io.PipeWriter
	body   *stdRequestBody
	done   chan struct{} // RoundTrip returned; resp and err are set
	resp   *http.Response
	err    error

	checked  sync.Once
	checkErr error
	timedOut atomic.Bool
	wclosed  atomic.Bool // CloseWrite or Close
	ended    atomic.Bool // CloseWrite
	readEOF  atomic.Bool // Read reached the end of the response

	mu     sync.Mutex
	rTimer *time.Timer
	wTimer *time.Timer
}

func (st *stdClientStream) response(ctx context.Context) error {
	select {
	case <-st.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	st.checked.Do(func() {
		switch {
		case st.err != nil && st.timedOut.Load():
			st.checkErr = errTimeout
		case st.err != nil:
			st.checkErr = connectErr(ctx, st.err)
		default:
			st.checkErr = checkResponse(st.resp)
		}
	})
	return st.checkErr
}

// Write fails with the refusal when the server refused the CONNECT, as a
// Read does: net/http closes the request body when the stream ends, which
// may be before its RoundTrip returns with the answer, so a failed Write
// waits for that.
func (st *stdClientStream) Write(p []byte) (int, error) {
	n, err := st.pw.Write(p)
	if err != nil && !st.timedOut.Load() && !st.wclosed.Load() {
		<-st.done
	}
	if err != nil {
		err = st.mapErr(err)
	}
	return n, err
}

func (st *stdClientStream) Read(p []byte) (int, error) {
	n, err := st.resp.Body.Read(p)
	if err == io.EOF {
		st.readEOF.Store(true)
	} else if err != nil {
		err = st.mapErr(err)
	}
	return n, err
}

// mapErr prefers the reason the stream ended: a deadline, a refusal.
func (st *stdClientStream) mapErr(err error) error {
	if st.timedOut.Load() {
		return errTimeout
	}
	select {
	case <-st.done:
		if rerr := st.response(context.Background()); rerr != nil {
			return rerr
		}
	default:
	}
	return err
}

func (st *stdClientStream) CloseWrite() error {
	st.wclosed.Store(true)
	st.ended.Store(true)
	return st.pw.Close()
}

func (st *stdClientStream) Close() error {
	st.mu.Lock()
	for _, t := range []*time.Timer{st.rTimer, st.wTimer} {
		if t != nil {
			t.Stop()
		}
	}
	st.mu.Unlock()
	if st.ended.Load() && st.readEOF.Load() {
		// Both ways are over, but net/http may still be sending what
		// Write handed it, and a response body closed now would abort the
		// stream and cut that off; it closes the request body once it has
		// sent the rest, or once a deadline, a reset or the connection's
		// end stops it.
		<-st.body.done
	}
	st.wclosed.Store(true)
	st.cancel()
	st.pw.CloseWithError(net.ErrClosed)
	<-st.done
	if st.resp != nil {
		st.resp.Body.Close()
	}
	return nil
}

func (st *stdClientStream) SetReadDeadline(t time.Time) error {
	st.setDeadline(&st.rTimer, t)
	return nil
}

func (st *stdClientStream) SetWriteDeadline(t time.Time) error {
	st.setDeadline(&st.wTimer, t)
	return nil
}

func (st *stdClientStream) setDeadline(timer **time.Timer, t time.Time) {
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
