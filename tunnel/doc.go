// Package tunnel owns both sides of porta's proxy protocol.
//
// # Server
//
// [Handler] sits in front of the website. An HTTP CONNECT (on HTTP/1.1,
// HTTP/2 or HTTP/3) or an absolute-form HTTP/1.1 request ("GET http://...")
// that carries exactly one valid "Proxy-Authorization: Basic" for one of
// [Users] is tunneled to its target, subject to the egress policy, which is
// checked on the resolved address at dial time. Every other request —
// including proxy requests with missing, wrong or garbled credentials —
// goes to HandlerConfig.Next untouched, so a prober cannot tell the server
// from the site. Authenticated clients get real errors, with an RFC 9209
// Proxy-Status header.
//
// An authenticated extended CONNECT with :protocol connect-udp (RFC 9298)
// at masque.Path's template is a UDP flow to its target, under the same
// credentials and egress policy: HTTP Datagrams (RFC 9297) over HTTP/3,
// DATAGRAM capsules over HTTP/2 (which needs the server to offer extended
// CONNECT: internal/h2's EnableConnectProtocol, or net/http's with
// GODEBUG=http2xconnect=1), with an idle timeout and a per-user flow
// limit ([UsersConfig].MaxUDPFlows); [Handler.UDPStats] counts them.
//
// Serve one Handler from a TLS http.Server (HTTP/1.1 and HTTP/2, with
// Server.HTTP2 = [ServerHTTP2Config]()) and a quic-go http3.Server (with
// QUICConfig = [ServerQUICConfig]()) on the same port. HTTP/1.1 and HTTP/3
// tunnels outlive their handler call (the connection is hijacked, the
// stream taken over), so on shutdown wait for [Handler.Active] to reach
// zero or call [Handler.Close]. Call [Users.Reload] on SIGHUP.
//
// # Client
//
// [Dialer] opens tunneled TCP connections as CONNECT streams over one
// long-lived connection to a porta server (another only while one is full),
// over HTTP/2 or HTTP/3, failing over between servers with jittered backoff.
// DialContext returns at once and the CONNECT leaves with the first Write,
// so a new connection costs one round trip. DialContext with "udp" opens a
// CONNECT-UDP flow on the same connection, a net.Conn whose Writes and
// Reads are datagrams (over internal/h2 or HTTP/3; not with StdHTTP2).
//
// Over HTTP/2 the Dialer speaks the protocol itself, on x/net/http2's
// Framer, rather than through net/http's Transport, which copies each
// received byte into a bufio.Reader, the Framer and a pipe per stream
// before the reader's own copy. Here a DATA frame is decrypted once, into
// a waiting Read's buffer or a chunk queued on its stream, and a
// connection's CopyChunks (used by copybuf.Copy) hands those chunks on as
// they are. A server that sends GOAWAY gets no new streams, but the
// streams it has run to their end.
//
// Transport "auto" chooses by what it measures, not by fashion: it races
// HTTP/2 and HTTP/3 to the server and keeps HTTP/2 when that connects
// within twice HTTP/3's handshake time plus 50 ms, because Go moves several
// times more bytes per CPU second over HTTP/2 than over QUIC (measured by
// bench/tunnel.sh: ~750-780 MB/s against ~300-310 for one stream). It keeps
// HTTP/3 when TCP fails (blocked) or is much slower to connect (lossy or
// throttled), and skips a transport that failed for five minutes.
package tunnel
