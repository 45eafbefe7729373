package client

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// Records are local DNS records: names that the client answers itself,
// without going out. Keys are lower-case FQDNs ("porta.test.").
type Records map[string][]netip.Addr

// ParseRecords reads NAME=IP entries for Config.Records; a name given
// several times gets every address.
func ParseRecords(entries []string) (Records, error) {
	recs := Records{}
	for _, e := range entries {
		name, ip, ok := strings.Cut(e, "=")
		if !ok || name == "" {
			return nil, &ConfigError{Field: "Records", Value: e, Err: errors.New("want NAME=IP")}
		}
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			return nil, &ConfigError{Field: "Records", Value: e, Err: err}
		}
		if _, ok := dns.IsDomainName(name); !ok {
			return nil, &ConfigError{Field: "Records", Value: e, Err: fmt.Errorf("%q is not a domain name", name)}
		}
		fqdn := dns.CanonicalName(name)
		recs[fqdn] = append(recs[fqdn], addr.Unmap())
	}
	return recs, nil
}

// localRecordTTL is the TTL of answers from local records.
const localRecordTTL = 60

// answer answers q from the records, or returns nil if the name is not one
// of theirs. A local name answers A and AAAA with its addresses of that
// family, and any other type with no data.
func (recs Records) answer(q *dns.Msg) *dns.Msg {
	if len(q.Question) != 1 {
		return nil
	}
	question := q.Question[0]
	addrs, ok := recs[dns.CanonicalName(question.Name)]
	if !ok || question.Qclass != dns.ClassINET {
		return nil
	}
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	m.RecursionAvailable = true
	hdr := dns.RR_Header{Name: question.Name, Class: dns.ClassINET, Ttl: localRecordTTL, Rrtype: question.Qtype}
	for _, a := range addrs {
		switch {
		case question.Qtype == dns.TypeA && a.Is4():
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: a.AsSlice()})
		case question.Qtype == dns.TypeAAAA && a.Is6():
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
		}
	}
	return m
}
