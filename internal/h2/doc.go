// Package h2 holds porta's own frame-level HTTP/2, built on x/net/http2's
// Framer and hpack rather than on net/http's HTTP/2 stack, for both sides.
// It knows HTTP/2, not proxies: it reports statuses, header fields and
// stream and connection errors, and leaves it to its callers (package
// tunnel) to say what an answer means.
//
// # Server
//
// [Server] serves HTTP/2 for an http.Server in place of net/http's own
// ([Server.ConfigureServer]: through TLSNextProto, so net/http still
// accepts, does the TLS handshake and owns Shutdown and Close). It exists
// because net/http's cannot end a response while it still reads the
// request (a tunnel whose target half-closes first would drop the rest of
// the client's upload), and it is faster: handlers write their frames
// themselves, under one lock, and the last writer out flushes after the
// goroutines that are ready have run, so the answers of handlers that
// finish together share a TLS record; the goroutines that ran handlers
// are kept for the next; a request's parts live in its stream.
//
// On the wire it is net/http's server: it reads its settings from the
// http.Server as net/http does and sends the same SETTINGS and
// WINDOW_UPDATEs; it refuses what net/http refuses with the same error
// codes (h2spec gives both the same report), decoding header blocks itself
// with the checks of Go's bundled Framer; its responses carry the same
// fields in the same order (Date, a sniffed Content-Type, a Content-Length
// when the body fits the 4 KiB buffer, trailers declared or with
// http.TrailerPrefix); and it has the same defences: handlers bounded by
// the stream limit with a bounded queue (rapid reset), header lists bounded
// (CONTINUATION floods, HPACK bombs), a bounded queue of control frames
// (PING floods; SETTINGS acks coalesce as net/http's do), the preface and
// first-SETTINGS timeouts, the idle timeout and the PING health check. The
// tests hold it to that, frame by frame, against net/http's.
//
// What it adds is on its ResponseWriter: [CloseWriter] (END_STREAM while
// the request body still flows), [Resetter] (RST_STREAM with a chosen
// code), and [Tuner], with which a handler that knows its client grows its
// stream's and connection's windows and stream limit, starts PINGs and
// pads its first frames, where only that client sees it.
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
