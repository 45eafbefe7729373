// Package socks5 is a SOCKS5 server (RFC 1928) with optional
// username/password authentication (RFC 1929), for porta's local proxy.
//
// It knows nothing of the tunnel: it reaches targets through a DialFunc,
// passing domain names to it unresolved, so that names are resolved on the
// far side. Only CONNECT is served; BIND and UDP ASSOCIATE are answered
// "command not supported".
package socks5
