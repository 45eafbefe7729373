package doh

import (
	"context"
	"strings"

	"github.com/miekg/dns"
)

// OwnRecords are the records of names that a Handler answers itself.
type OwnRecords interface {
	// Records returns the records that answer a query for name (lower
	// case and fully qualified, as miekg/dns writes names) and qtype, and
	// true; or false when the Resolver is to answer it.
	Records(name string, qtype uint16) ([]dns.RR, bool)
}

// own asks h.Own about q, a query of one question in the IN class.
func (h *Handler) own(msg []byte, q *query) ([]dns.RR, bool) {
	if h.Own == nil || q.qdcount != 1 || q.opcode != dns.OpcodeQuery || q.qclass != dns.ClassINET {
		return nil, false
	}
	name, _, err := dns.UnpackDomainName(msg, q.nameOff)
	if err != nil {
		return nil, false
	}
	return h.Own.Records(strings.ToLower(name), q.qtype)
}

// ownAnswer is an Exchanger that answers with its records, authoritatively.
type ownAnswer []dns.RR

func (a ownAnswer) Exchange(_ context.Context, m *dns.Msg) (*dns.Msg, error) {
	r := new(dns.Msg)
	r.SetReply(m)
	r.Authoritative = true
	r.RecursionAvailable = true
	r.Answer = a
	if opt := m.IsEdns0(); opt != nil {
		r.SetEdns0(ednsSize, opt.Do())
	}
	return r, nil
}
