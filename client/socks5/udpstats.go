package socks5

import "sync/atomic"

// The UDP counters are kept with atomic adds where the work is done and
// read only by UDPStats, for a metrics exporter to read at scrape time.

// Why a datagram was dropped, the index of UDPStats.Dropped.
const (
	DropWrongSource  = iota // from an address other than the association's client
	DropBadHeader           // a malformed UDP request header
	DropFragmented          // FRAG not 0: fragments are not reassembled
	DropTooManyFlows        // to a new target while MaxUDPFlows are open
	DropDialing             // to a target still being dialed, with its queue full
	DropDialFailed          // to a target DialUDP failed to reach
	DropWriteFailed         // the flow (to the target) or the relay socket (to the client) refused it
	numDropReasons
)

// DropReasonNames names the reasons a datagram is dropped, by index.
func DropReasonNames() [numDropReasons]string {
	return [...]string{"wrong_source", "bad_header", "fragmented", "too_many_flows", "dialing", "dial_failed", "write_failed"}
}

// UDPStats is a snapshot of a Server's UDP ASSOCIATE counters since it was
// made.
type UDPStats struct {
	// Associations counts the associations opened; ActiveAssociations
	// those open now.
	Associations       uint64
	ActiveAssociations int64
	// Flows counts the flows to targets opened (each a DialUDP call);
	// ActiveFlows those open or dialing now.
	Flows       uint64
	ActiveFlows int64
	// DatagramsIn counts the datagrams from clients written to targets;
	// DatagramsOut those from targets sent to clients.
	DatagramsIn, DatagramsOut uint64
	// Dropped counts the datagrams dropped, either way, by reason
	// (DropWrongSource, ...).
	Dropped [numDropReasons]uint64
}

// udpCounts are a Server's UDP counters.
type udpCounts struct {
	associations, flows             atomic.Uint64
	activeAssociations, activeFlows atomic.Int64
	in, out                         atomic.Uint64
	dropped                         [numDropReasons]atomic.Uint64
}

func (c *udpCounts) drop(reason int) { c.dropped[reason].Add(1) }

// UDPStats returns the Server's UDP ASSOCIATE counters.
func (s *Server) UDPStats() UDPStats {
	st := UDPStats{
		Associations:       s.udp.associations.Load(),
		ActiveAssociations: s.udp.activeAssociations.Load(),
		Flows:              s.udp.flows.Load(),
		ActiveFlows:        s.udp.activeFlows.Load(),
		DatagramsIn:        s.udp.in.Load(),
		DatagramsOut:       s.udp.out.Load(),
	}
	for i := range st.Dropped {
		st.Dropped[i] = s.udp.dropped[i].Load()
	}
	return st
}
