package server

import (
	"net"
	"net/http"
	"strconv"
)

// redirectToHTTPS answers plain HTTP with a permanent redirect to the same
// host and path over HTTPS on httpsPort.
type redirectToHTTPS struct {
	httpsPort int
}

func (rd redirectToHTTPS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "" || r.URL.Path == "" || r.URL.Path[0] != '/' {
		http.Error(w, "400 bad request", http.StatusBadRequest)
		return
	}
	if rd.httpsPort != 443 {
		host = net.JoinHostPort(host, strconv.Itoa(rd.httpsPort))
	} else if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		host = "[" + host + "]"
	}
	target := "https://" + host + r.URL.RequestURI()
	code := http.StatusMovedPermanently
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		code = http.StatusPermanentRedirect // keeps the method and body
	}
	w.Header().Set("Connection", "close")
	http.Redirect(w, r, target, code)
}
