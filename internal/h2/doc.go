// Package h2 holds porta's own frame-level HTTP/2, built on x/net/http2's
// Framer and hpack rather than on net/http's HTTP/2 stack. It knows
// HTTP/2, not proxies: it reports statuses, header fields and stream and
// connection errors, and leaves it to its callers (package tunnel) to say
// what an answer means.
//
// # Client
//
// [ClientConn] is the client end of one HTTP/2 connection over a TLS
// connection that negotiated "h2". It opens streams ([ClientConn.NewStream],
// a CONNECT tunnel for instance) and sends ordinary requests
// ([ClientConn.RoundTrip], DoH); it keeps flow control both ways, answers
// SETTINGS and PING, pings an idle server as a health check, and honours
// RST_STREAM and GOAWAY. It exists for speed: net/http's client copies each
// received byte into a bufio.Reader, the Framer and a pipe per stream before
// the reader's own copy; here the read loop decrypts a DATA frame straight
// into the buffer of a [ClientStream.Read] that waits for it, or into a
// chunk queued on the stream, which [ClientStream.CopyChunks] hands on as
// it is.
//
// It holds the server to RFC 9113: a server that breaks the protocol ends
// the stream concerned with a [*StreamError] (the client resets it) or the
// whole connection with a [*ConnError] (the client sends GOAWAY), never
// with a clean end of stream, data it should not have delivered, or a
// wait without end. It checks the server's preface, stream states (DATA
// or HEADERS on a stream never opened or already closed), the shape of
// responses (interim 1xx responses, at most a few and never ending the
// stream; DATA only after the final response; trailers that end it;
// Content-Length), header blocks (HPACK, field names and values, pseudo
// fields, size, CONTINUATION floods), SETTINGS values and their
// acknowledgement, flow-control windows both ways, and push, which it
// turns off. A stream the server did not process (refused, or left out of
// a GOAWAY) fails with an error that wraps [ErrNotProcessed], so that a
// caller may send it again elsewhere.
package h2
