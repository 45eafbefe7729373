package server

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/porta443/porta/doh"
	"github.com/porta443/porta/internal/metrics"
	"github.com/porta443/porta/tunnel"
	"github.com/quic-go/quic-go"
)

// counts are the server's own counters; the resolver, the DoH handlers
// and the tunnel keep theirs. All are read by metricSet at scrape time.
type counts struct {
	site, probeSite atomic.Uint64      // website requests; those a proxy-shaped request without credentials reached
	tcp, quic       metrics.ConnCounts // connections
	tlsFailed       atomic.Uint64      // TCP connections closed before their TLS handshake completed
}

// counted counts the requests it passes to next.
type counted struct {
	n    *atomic.Uint64
	next http.Handler
}

func (c counted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.n.Add(1)
	c.next.ServeHTTP(w, r)
}

// routers are the Router that serves requests and the one the tunnel
// passes proxy requests without valid credentials (probes) to: the same
// website and resolver, counted apart.
func (s *Server) routers(site http.Handler) (main, probe *Router) {
	s.doh = &doh.Handler{Resolver: s.resolver, Logger: s.log}
	s.probeDoH = &doh.Handler{Resolver: s.resolver, Logger: s.log}
	main = &Router{DoHPath: s.cfg.DoHPath, DoH: s.doh, Site: counted{&s.counts.site, site}}
	probe = &Router{DoHPath: s.cfg.DoHPath, DoH: s.probeDoH, Site: counted{&s.counts.probeSite, site}}
	return main, probe
}

// connState counts the TCP connections that close before their TLS
// handshake is complete: failed, timed out, or given up by the client.
func (s *Server) connState(c net.Conn, state http.ConnState) {
	if state != http.StateClosed {
		return
	}
	if tc, ok := c.(*tls.Conn); ok && !tc.ConnectionState().HandshakeComplete {
		s.counts.tlsFailed.Add(1)
	}
}

// quicConn counts a QUIC connection, until it ends.
func (s *Server) quicConn(c *quic.Conn) {
	context.AfterFunc(c.Context(), s.counts.quic.Open())
}

// metricSet is what --metrics exports about the server.
func (s *Server) metricSet() *metrics.Set {
	set := new(metrics.Set)
	set.Counter("porta_requests_total",
		"Requests by the face of the server that answered them: site, doh, tunnel (authenticated proxy requests), probe (proxy requests without valid credentials, answered as the site answers).",
		[]string{"face"}, func(emit metrics.Emit) {
			emit(float64(s.counts.site.Load()), "site")
			emit(float64(s.doh.Stats().Total()), "doh")
			var tunneled uint64
			if s.tunnel != nil {
				tunneled = s.tunnel.Tunneled()
			}
			emit(float64(tunneled), "tunnel")
			emit(float64(s.counts.probeSite.Load()+s.probeDoH.Stats().Total()), "probe")
		})
	set.Counter("porta_doh_responses_total",
		"DNS-over-HTTPS responses by HTTP status; 0: the client went away first.",
		[]string{"code"}, func(emit metrics.Emit) {
			probe := s.probeDoH.Stats().Responses
			for code, n := range s.doh.Stats().Responses {
				emit(float64(n+probe[code]), strconv.Itoa(code))
			}
		})
	set.AddResolver(s.resolver)
	set.AddConns("transport", map[string]*metrics.ConnCounts{"tcp": &s.counts.tcp, "quic": &s.counts.quic})
	set.Counter("porta_tls_handshake_errors_total",
		"TCP connections closed before their TLS handshake completed: failed, timed out or abandoned.",
		nil, func(emit metrics.Emit) { emit(float64(s.counts.tlsFailed.Load())) })
	if s.users != nil {
		addTunnelMetrics(set, s)
	}
	return set
}

func addTunnelMetrics(set *metrics.Set, s *Server) {
	labels := []string{"user"}
	set.Counter("porta_tunnel_streams_total", "Tunneled streams opened, by user.", labels, func(emit metrics.Emit) {
		for _, u := range s.users.Stats() {
			emit(float64(u.Total), u.Name)
		}
	})
	set.Gauge("porta_tunnel_streams_active", "Tunneled streams open now, by user.", labels, func(emit metrics.Emit) {
		for _, u := range s.users.Stats() {
			emit(float64(u.Streams), u.Name)
		}
	})
	set.Counter("porta_tunnel_bytes_total",
		"Bytes tunneled, by user and direction: up is client to target, down target to client.",
		[]string{"user", "direction"}, func(emit metrics.Emit) {
			for _, u := range s.users.Stats() {
				emit(float64(u.BytesUp), u.Name, "up")
				emit(float64(u.BytesDown), u.Name, "down")
			}
		})
	udp := func(f func(st tunnel.UDPStats, emit metrics.Emit)) func(metrics.Emit) {
		return func(emit metrics.Emit) { f(s.tunnel.UDPStats(), emit) }
	}
	set.Counter("porta_udp_flows_total", "CONNECT-UDP flows opened.", nil,
		udp(func(st tunnel.UDPStats, emit metrics.Emit) { emit(float64(st.Flows)) }))
	set.Gauge("porta_udp_flows_active", "CONNECT-UDP flows open now.", nil,
		udp(func(st tunnel.UDPStats, emit metrics.Emit) { emit(float64(st.Active)) }))
	set.Counter("porta_udp_datagrams_total",
		"Datagrams relayed by CONNECT-UDP flows, by direction: up is client to target, down target to client.",
		[]string{"direction"}, udp(func(st tunnel.UDPStats, emit metrics.Emit) {
			emit(float64(st.DatagramsUp), "up")
			emit(float64(st.DatagramsDown), "down")
		}))
	set.Counter("porta_udp_dropped_total",
		"Datagrams CONNECT-UDP flows dropped: longer than the flow carries, or refused by the target's socket.",
		nil, udp(func(st tunnel.UDPStats, emit metrics.Emit) { emit(float64(st.Dropped)) }))
}

// ListenMetrics opens the listener for Listeners.Metrics at addr: on
// loopback when addr names no host, and never on the port of service
// (the TCP listener), which is public.
func ListenMetrics(addr string, service net.Listener) (net.Listener, error) {
	port := 0
	if a, ok := service.Addr().(*net.TCPAddr); ok {
		port = a.Port
	}
	ln, err := metrics.Listen(addr, port)
	if err != nil {
		return nil, &ListenError{Listener: "Metrics", Err: err}
	}
	return ln, nil
}
