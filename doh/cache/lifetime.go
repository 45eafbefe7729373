package cache

import "github.com/miekg/dns"

// Lifetime is how long m may be cached and what its HTTP max-age is: the
// smallest TTL of its records, or for a negative answer (NXDOMAIN, or NOERROR
// without answers) the smaller of the SOA's TTL and MINIMUM (RFC 2308 §5).
// Answers that must not be cached (other response codes, negative answers
// without an SOA, truncated answers) have lifetime 0.
func Lifetime(m *dns.Msg) uint32 {
	if m.Truncated {
		return 0
	}
	switch {
	case m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0:
		return minTTL(m)
	case m.Rcode == dns.RcodeSuccess || m.Rcode == dns.RcodeNameError:
		for _, rr := range m.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				return min(soa.Hdr.Ttl, soa.Minttl)
			}
		}
	}
	return 0
}

func minTTL(m *dns.Msg) uint32 {
	t := ^uint32(0)
	for _, s := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range s {
			h := rr.Header()
			if h.Rrtype == dns.TypeOPT {
				continue
			}
			t = min(t, h.Ttl)
		}
	}
	return t
}
