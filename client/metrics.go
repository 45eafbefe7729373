package client

import (
	"context"
	"net"
	"sync/atomic"

	"github.com/porta443/porta/client/socks5"
	"github.com/porta443/porta/internal/metrics"
)

// counts are the client's own counters; the resolver and the tunnel's
// Dialer keep theirs. All are read by metricSet at scrape time.
type counts struct {
	socks, httpProxy metrics.ConnCounts // local proxy connections
	dnsLocal         atomic.Uint64      // DNS queries answered without the resolver: records, the server's own name, malformed
	streams          metrics.ConnCounts // tunneled streams
	up, down         atomic.Uint64      // bytes through them
}

// countedConn counts a tunneled stream's bytes, and the stream until it
// is closed.
type countedConn struct {
	tunnelConn
	c      *counts
	closed func()
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.tunnelConn.Read(p)
	c.c.down.Add(uint64(n))
	return n, err
}

func (c *countedConn) Write(p []byte) (int, error) {
	n, err := c.tunnelConn.Write(p)
	c.c.up.Add(uint64(n))
	return n, err
}

func (c *countedConn) CopyChunks(dst func([]byte) error) (int64, error) {
	return c.tunnelConn.CopyChunks(func(b []byte) error {
		c.c.down.Add(uint64(len(b)))
		return dst(b)
	})
}

func (c *countedConn) Close() error {
	c.closed()
	return c.tunnelConn.Close()
}

// metricSet is what --metrics exports about the client.
func (c *Client) metricSet() *metrics.Set {
	set := new(metrics.Set)
	set.Counter("porta_requests_total",
		"Requests by the face of the client that took them: dns (queries), socks and http_proxy (connections).",
		[]string{"face"}, func(emit metrics.Emit) {
			var answers uint64
			for _, n := range c.resolver.Stats().Answers {
				answers += n
			}
			emit(float64(answers+c.counts.dnsLocal.Load()), "dns")
			emit(float64(c.counts.socks.Accepted()), "socks")
			emit(float64(c.counts.httpProxy.Accepted()), "http_proxy")
		})
	set.AddResolver(c.resolver)
	set.AddConns("listener", map[string]*metrics.ConnCounts{"socks": &c.counts.socks, "http_proxy": &c.counts.httpProxy})
	set.Counter("porta_tunnel_streams_total", "Tunneled streams opened.", nil,
		func(emit metrics.Emit) { emit(float64(c.counts.streams.Accepted())) })
	set.Gauge("porta_tunnel_streams_active", "Tunneled streams open now.", nil,
		func(emit metrics.Emit) { emit(float64(c.counts.streams.Active())) })
	set.Counter("porta_tunnel_bytes_total",
		"Bytes tunneled, by direction: up is to the server, down from it.",
		[]string{"direction"}, func(emit metrics.Emit) {
			emit(float64(c.counts.up.Load()), "up")
			emit(float64(c.counts.down.Load()), "down")
		})
	set.Counter("porta_udp_associations_total", "SOCKS5 UDP associations opened.", nil,
		func(emit metrics.Emit) { emit(float64(c.socks.UDPStats().Associations)) })
	set.Gauge("porta_udp_flows_active", "UDP flows through the tunnel open now (one per SOCKS5 association and target).", nil,
		func(emit metrics.Emit) { emit(float64(c.socks.UDPStats().ActiveFlows)) })
	set.Counter("porta_udp_datagrams_total",
		"Datagrams relayed for SOCKS5 UDP associations, by direction: up is to the server, down from it.",
		[]string{"direction"}, func(emit metrics.Emit) {
			st := c.socks.UDPStats()
			emit(float64(st.DatagramsIn), "up")
			emit(float64(st.DatagramsOut), "down")
		})
	set.Counter("porta_udp_dropped_total", "Datagrams of SOCKS5 UDP associations dropped, by reason.",
		[]string{"reason"}, func(emit metrics.Emit) {
			st := c.socks.UDPStats()
			for i, name := range socks5.DropReasonNames() {
				emit(float64(st.Dropped[i]), name)
			}
			emit(float64(c.dialer.Stats().UDPDropped), "from_server") // the tunnel's flows: a reader behind, an oversize capsule
		})
	set.Gauge("porta_server_connections_active", "Connections to the server open now, by transport.",
		[]string{"transport"}, func(emit metrics.Emit) {
			for proto, n := range c.dialer.Stats().Connections {
				emit(float64(n), proto)
			}
		})
	set.Counter("porta_server_connect_failures_total",
		"Tries to connect to a server that failed: TCP or QUIC, the TLS handshake, or the tunnel's first exchange.",
		nil, func(emit metrics.Emit) { emit(float64(c.dialer.Stats().ConnectFailures)) })
	return set
}

// ListenMetrics opens the listener for Listeners.Metrics at addr, on
// loopback when addr names no host.
func ListenMetrics(addr string) (net.Listener, error) {
	ln, err := metrics.Listen(addr, 0)
	if err != nil {
		return nil, &ListenError{Listener: "Metrics", Err: err}
	}
	return ln, nil
}

// serveMetrics serves the metrics on ln until Shutdown or Close.
func (c *Client) serveMetrics(ctx context.Context, ln net.Listener) error {
	c.mu.Lock()
	if c.shutdown {
		c.mu.Unlock()
		ln.Close()
		return nil
	}
	c.metrics = metrics.NewServer(c.metricSet(), c.log)
	srv := c.metrics
	c.mu.Unlock()
	return metrics.Serve(ctx, srv, ln)
}
