package tunnel

// DialerStats is a snapshot of a Dialer's connections to its servers.
type DialerStats struct {
	// Connections counts the live connections to servers by transport
	// ("h2", "h3").
	Connections map[string]int
	// ConnectFailures counts tries to connect to a server that failed:
	// TCP or QUIC, TLS (the server's certificate too), or the tunnel's
	// first exchange.
	ConnectFailures uint64
	// UDPDropped counts datagrams from servers that UDP flows dropped:
	// their reader fell behind by a full queue, or a capsule was over
	// MaxUDPPayload.
	UDPDropped uint64
}

// Stats returns the Dialer's counters, for a metrics exporter.
func (d *Dialer) Stats() DialerStats {
	st := DialerStats{Connections: map[string]int{"h2": 0, "h3": 0}, ConnectFailures: d.connectFailures.Load(), UDPDropped: d.udpDropped.Load()}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.sessions {
		if s.alive() {
			st.Connections[s.proto()]++
		}
	}
	for s := range d.draining {
		st.Connections[s.proto()]++
	}
	return st
}
