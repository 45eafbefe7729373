// Package tunnel owns both sides of porta's proxy protocol.
//
// On the server, [Handler] sits in front of the website: an HTTP CONNECT (on
// HTTP/1.1, HTTP/2 or HTTP/3) or an absolute-form HTTP/1.1 request that carries
// valid Proxy-Authorization credentials for one of [Users] is tunneled to its
// target, subject to the egress policy; every other request — including
// proxy requests with missing, wrong or garbled credentials — goes to the
// website untouched, so a prober cannot tell the server from the site.
//
// On the client, [Dialer] opens tunneled TCP connections as CONNECT streams
// over one long-lived HTTP/2 or HTTP/3 connection to a porta server.
package tunnel
