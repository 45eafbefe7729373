package server

import (
	"crypto/x509"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/miekg/dns"
)

// httpsRecordTTL is the TTL of the HTTPS records the server answers for
// its own names: well under a rotation, so that resolvers and browsers
// that cache them hold a config the server still accepts.
const httpsRecordTTL = 300

// ownRecords answers, through the server's own DoH, HTTPS queries (RFC
// 9460) for the server's own names with what a browser needs to reach it
// with Encrypted Client Hello: alpn, the port when it is not 443, and the
// current ECH config list. The server's own names are the DNS names its
// --cert or self-signed certificate covers (read again when it changes)
// and its ACME names, but wildcards, localhost and the ECH public name,
// and each of them as _PORT._https.NAME (RFC 9460 §9.1) when the port is
// not 443. Every other query, and every other type for those names, goes
// to the resolver as before.
type ownRecords struct {
	certs *certSource
	ech   *echKeys

	port  atomic.Uint32 // the TCP port served; 0 before Serve
	h3    atomic.Bool   // whether QUIC is served too
	names atomic.Pointer[ownNames]
}

// ownNames are the names one certificate makes the server's own, with
// the ACME names.
type ownNames struct {
	leaf  *x509.Certificate // nil: none, with ACME alone
	port  uint32
	names map[string]bool // FQDNs in lower case
}

// serving tells ownRecords what Serve serves: the TCP port, and whether
// HTTP/3 is on.
func (o *ownRecords) serving(port int, h3 bool) {
	o.port.Store(uint32(port))
	o.h3.Store(h3)
}

func (o *ownRecords) Records(name string, qtype uint16) ([]dns.RR, bool) {
	port := o.port.Load()
	if qtype != dns.TypeHTTPS || port == 0 || !o.own(name, port) {
		return nil, false
	}
	alpn := []string{"h2"}
	if o.h3.Load() {
		alpn = []string{"h3", "h2"}
	}
	values := []dns.SVCBKeyValue{&dns.SVCBAlpn{Alpn: alpn}}
	if port != 443 {
		values = append(values, &dns.SVCBPort{Port: uint16(port)})
	}
	values = append(values, &dns.SVCBECHConfig{ECH: o.ech.configList()})
	return []dns.RR{&dns.HTTPS{SVCB: dns.SVCB{
		Hdr:      dns.RR_Header{Name: name, Rrtype: dns.TypeHTTPS, Class: dns.ClassINET, Ttl: httpsRecordTTL},
		Priority: 1,
		Target:   ".",
		Value:    values,
	}}}, true
}

// own reports whether name is one of the server's own.
func (o *ownRecords) own(name string, port uint32) bool {
	var leaf *x509.Certificate
	if cert := o.certs.current.Load(); cert != nil {
		leaf = cert.Leaf
	}
	n := o.names.Load()
	if n == nil || n.leaf != leaf || n.port != port {
		n = &ownNames{leaf: leaf, port: port, names: map[string]bool{}}
		prefix := "_" + strconv.Itoa(int(port)) + "._https."
		var all []string
		if leaf != nil {
			all = leaf.DNSNames
		}
		if o.certs.acme != nil {
			all = append(slices.Clone(all), o.certs.acme.names...)
		}
		for _, dnsName := range all {
			dnsName = strings.ToLower(dnsName)
			if strings.Contains(dnsName, "*") || dnsName == "localhost" || strings.HasSuffix(dnsName, ".localhost") ||
				dnsName == o.ech.publicName || !plausibleHostname(dnsName) {
				continue
			}
			n.names[dns.Fqdn(dnsName)] = true
			if port != 443 {
				n.names[prefix+dns.Fqdn(dnsName)] = true
			}
		}
		o.names.Store(n)
	}
	return n.names[name]
}
