// Package httpproxy is an HTTP/1.1 proxy server for porta's local proxy:
// CONNECT tunnels, absolute-form requests ("GET http://host/path") for
// applications that only speak plain HTTP proxying, and a proxy
// auto-configuration file at /proxy.pac on the same listener.
//
// It knows nothing of the tunnel: it reaches targets through a DialFunc,
// passing host names to it unresolved, so that names are resolved on the
// far side.
package httpproxy
