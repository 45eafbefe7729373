package doh

import (
	"context"

	"github.com/miekg/dns"
)

// Exchanger answers DNS queries. The answer's ID matches the query's.
type Exchanger interface {
	Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error)
}

// MaxMessageSize is the largest DNS message there is, and the cap on every
// DoH body read or written.
const MaxMessageSize = 65535
