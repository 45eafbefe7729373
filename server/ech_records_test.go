package server_test

import (
	"bytes"
	"encoding/base64"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/porta443/porta/internal/testenv"
	"github.com/porta443/porta/server"
)

// TestHTTPSRecordsOfOwnNames: the server's DoH answers HTTPS queries for
// the names its certificate covers (but the public name and localhost),
// as NAME and as _PORT._https.NAME, with alpn h3,h2, the port (not 443
// here) and the current ECH config list, over GET and POST and over each
// protocol; after a rotation, the new list. Every other query goes to the
// upstream as before. miekg/dns parses the answers.
func TestHTTPSRecordsOfOwnNames(t *testing.T) {
	up := testenv.NewUpstream(t, map[string][]string{realName: {"192.0.2.9"}})
	e := startECH(t, server.Config{Upstreams: []string{up.URL()}})
	_, portText, _ := net.SplitHostPort(e.addr)
	port := must(net.LookupPort("tcp", portText))
	ask := func(name string, qtype uint16) *dns.Msg {
		q := new(dns.Msg)
		q.SetQuestion(name, qtype)
		q.SetEdns0(1232, false)
		var got *dns.Msg
		for proto, c := range e.clients(t) {
			for _, method := range []string{"GET", "POST"} {
				a := exchangeDoH(t, c, e.running, method, q.Copy())
				if got != nil && a.String() != got.String() {
					t.Errorf("%s %s over %s differs:\n%s\nfrom\n%s", method, name, proto, a, got)
				}
				got = a
			}
		}
		return got
	}
	check := func(name string, list []byte) {
		t.Helper()
		a := ask(name, dns.TypeHTTPS)
		if a.Rcode != dns.RcodeSuccess || len(a.Answer) != 1 || !a.Authoritative {
			t.Fatalf("HTTPS %s:\n%s", name, a)
		}
		h, ok := a.Answer[0].(*dns.HTTPS)
		if !ok || !strings.EqualFold(h.Hdr.Name, name) || h.Priority != 1 || h.Target != "." || h.Hdr.Ttl == 0 || h.Hdr.Ttl > 300 {
			t.Fatalf("HTTPS %s: %v", name, a.Answer[0])
		}
		var alpn []string
		var gotPort uint16
		var gotECH []byte
		for _, kv := range h.Value {
			switch v := kv.(type) {
			case *dns.SVCBAlpn:
				alpn = v.Alpn
			case *dns.SVCBPort:
				gotPort = v.Port
			case *dns.SVCBECHConfig:
				gotECH = v.ECH
			}
		}
		if !slices.Equal(alpn, []string{"h3", "h2"}) || int(gotPort) != port || !bytes.Equal(gotECH, list) {
			t.Errorf("HTTPS %s: alpn %q port %d ech %x, want h3,h2, %d, %x", name, alpn, gotPort, gotECH, port, list)
		}
	}
	list := e.srv.ECHConfigList()
	check(realName+".", list)
	check("_"+portText+"._https."+realName+".", list)
	check("HIDDEN-Origin.test.", list)

	// Not the server's own: the upstream answers (it knows none of them).
	for _, name := range []string{publicName + ".", "localhost.", "other.test.", "_443._https." + realName + "."} {
		if a := ask(name, dns.TypeHTTPS); a.Rcode != dns.RcodeNameError || a.Authoritative && len(a.Answer) > 0 {
			t.Errorf("HTTPS %s: want the upstream's NXDOMAIN:\n%s", name, a)
		}
	}
	// Another type for an own name: the upstream's answer.
	if a := ask(realName+".", dns.TypeA); len(a.Answer) != 1 || !strings.Contains(a.Answer[0].String(), "192.0.2.9") {
		t.Errorf("A %s: want the upstream's address:\n%s", realName, a)
	}

	e.srv.MaintainECH(time.Now().Add(25 * time.Hour))
	if rotated := e.srv.ECHConfigList(); bytes.Equal(rotated, list) {
		t.Fatal("not rotated")
	} else {
		check(realName+".", rotated)
	}

	// Without ECH, the server has no records of its own.
	plain := start(t, server.Config{Upstreams: []string{up.URL()}}, false)
	q := new(dns.Msg)
	q.SetQuestion(realName+".", dns.TypeHTTPS)
	if a := exchangeDoH(t, plain.clients(t)["h2"], plain, "GET", q); len(a.Answer) != 0 {
		t.Errorf("a server without ECH answered HTTPS itself:\n%s", a)
	}
}

// TestDigReadsTheHTTPSRecord: dig +https, asking the server's DoH for
// TYPE65, reads the record as RFC 9460's presentation form.
func TestDigReadsTheHTTPSRecord(t *testing.T) {
	dig := testenv.LookPath(t, "dig", "bind9-dnsutils")
	e := startECH(t, server.Config{})
	host, port, _ := net.SplitHostPort(e.addr)
	out, err := exec.Command(dig, "+https", "+short", "+tries=1", "+time=5", "@"+host, "-p", port, realName, "TYPE65").CombinedOutput()
	want := `1 . alpn="h3,h2" port=` + port + ` ech=` + base64.StdEncoding.EncodeToString(e.srv.ECHConfigList())
	if err != nil || strings.TrimSpace(string(out)) != want {
		t.Errorf("dig: %q %v\nwant %q", out, err, want)
	}
}
