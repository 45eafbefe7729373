package tunnel

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
)

// newForwarder builds the reverse proxy that carries absolute-form requests
// (GET http://host/path), as browsers send them to an HTTP proxy. Its
// connections are dialed through the egress policy and never reused, so no
// idle connection outlives its request.
func (h *Handler) newForwarder() *httputil.ReverseProxy {
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			r, _ := ctx.Value(forwardKey{}).(*forwardInfo)
			if r == nil {
				return nil, fmt.Errorf("%w: no request", ErrBadTarget)
			}
			c, err := h.egress.dial(ctx, addr, r.local)
			if err != nil {
				return nil, err
			}
			return &countingConn{TCPConn: c, us: r.us}, nil
		},
		DisableKeepAlives:      true,
		DisableCompression:     true,
		ResponseHeaderTimeout:  0,
		MaxResponseHeaderBytes: 1 << 20,
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.Host = pr.In.Host
		},
		Transport:     tr,
		FlushInterval: -1,
		// Its errors name the target's address: debug only, never the
		// log package's default logger, which prints at every level.
		ErrorLog: slog.NewLogLogger(h.log.Handler(), slog.LevelDebug),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			writeProxyError(w, r, h.cfg.ProxyName, err)
		},
	}
}

type forwardKey struct{}

type forwardInfo struct {
	us    *user
	local netip.Addr
}

// serveForward proxies an authenticated plain-http request: absolute-form
// on HTTP/1.1, or an origin's :authority on HTTP/2 and HTTP/3.
func (h *Handler) serveForward(w http.ResponseWriter, r *http.Request, us *user) {
	if r.ProtoMajor >= 2 {
		// HTTP/2 and HTTP/3 carry the origin in :authority (see
		// isProxyRequest); the request is for http://host/path.
		r = r.Clone(r.Context())
		r.URL.Scheme, r.URL.Host = "http", r.Host
	}
	if r.URL.Scheme != "http" || r.URL.Host == "" {
		writeProxyError(w, r, h.cfg.ProxyName, fmt.Errorf("%w: absolute-form needs an http:// URL", ErrBadTarget))
		return
	}
	http.NewResponseController(w).EnableFullDuplex()
	ctx := context.WithValue(r.Context(), forwardKey{}, &forwardInfo{us: us, local: localAddr(r)})
	h.forward.ServeHTTP(w, r.WithContext(ctx))
}

// countingConn adds a forwarded connection's bytes to its user's counters.
type countingConn struct {
	*net.TCPConn
	us *user
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	c.us.c.bytesDown.Add(uint64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.TCPConn.Write(p)
	c.us.c.bytesUp.Add(uint64(n))
	return n, err
}
