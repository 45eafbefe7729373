// Package doh owns DNS over HTTPS (RFC 8484) for porta: the HTTP handler that
// serves it, a client that speaks it, and the Resolver behind both: upstreams
// over UDP, TCP, TLS and HTTPS, chosen by health and round-trip time, with a
// wire-form cache, coalescing of identical queries, serve-stale and prefetch.
//
// Anything that answers DNS queries is an Exchanger; the tunnel resolves the
// names it dials through the Resolver too (LookupNetIP).
package doh
