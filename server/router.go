package server

import (
	"net/http"
	"strings"
)

// Router decides, per request, who answers: the DoH resolver on its path,
// else the website. The tunnel, when there is one, stands in front of the
// Router and takes only authenticated proxy requests; everything else,
// however proxy-shaped, reaches the Router as it would with no tunnel.
type Router struct {
	DoHPath string       // "/dns-query" and "/dns-query/..."
	DoH     http.Handler // nil: no DoH; its path is the website's
	Site    http.Handler
}

func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rt.DoH != nil && r.Method != http.MethodConnect && rt.isDoHPath(r.URL.Path) {
		rt.DoH.ServeHTTP(w, r)
		return
	}
	rt.Site.ServeHTTP(w, r)
}

func (rt *Router) isDoHPath(p string) bool {
	rest, ok := strings.CutPrefix(p, rt.DoHPath)
	return ok && (rest == "" || rest[0] == '/')
}

// altSvc advertises HTTP/3 on HTTP/1.1 and HTTP/2 responses.
// Its one header value is shared by every response rather than made anew
// for each: nothing writes into a header's value slice in place.
type altSvc struct {
	value []string // e.g. {`h3=":443"; ma=86400`}
	next  http.Handler
}

func (a altSvc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.ProtoMajor {
	case 1:
		w.Header()["Alt-Svc"] = a.value
	case 2:
		// HTTP/2 sends field names in lower case (RFC 9113 §8.2.2);
		// net/http would lower "Alt-Svc" with an allocation per response.
		w.Header()["alt-svc"] = a.value
	}
	a.next.ServeHTTP(w, r)
}

// earlyDataGuard answers 425 Too Early (RFC 8470) to a request that came in
// TLS early data (HTTP/3 0-RTT) unless its method is safe: early data can be
// replayed by anyone who recorded it.
type earlyDataGuard struct{ next http.Handler }

func (g earlyDataGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.TLS != nil && !r.TLS.HandshakeComplete {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			http.Error(w, "425 too early", http.StatusTooEarly)
			return
		}
	}
	g.next.ServeHTTP(w, r)
}
