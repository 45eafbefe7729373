// Package socks5 is a SOCKS5 server (RFC 1928) with optional
// username/password authentication (RFC 1929), for porta's local proxy.
//
// It knows nothing of the tunnel: it reaches targets through a DialFunc,
// passing domain names to it unresolved, so that names are resolved on the
// far side. It serves CONNECT, and UDP ASSOCIATE when Config.DialUDP is
// set (otherwise, like BIND, it is answered "command not supported").
//
// A UDP association lives as long as its control connection. Its relay
// socket listens on the IP the client connected to and takes datagrams
// only from the client's IP (and the address its request named, if any),
// then only from the address of the first one it took. Each target, as
// the client named it, gets its own flow: one DialUDP connection, dialed
// when the first datagram to it arrives (a few more wait for the dial),
// closed after Config.UDPIdleTimeout without traffic or when its Read
// fails. Its limits: fragments (FRAG not 0) are dropped, not reassembled;
// at most Config.MaxUDPFlows targets at once; and a datagram that cannot
// be taken or passed on is dropped and counted, by reason, in
// Server.UDPStats.
package socks5
