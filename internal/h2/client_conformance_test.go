package h2

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/porta443/porta/internal/h2/h2test"
	"golang.org/x/net/http2"
)

// conformanceRow is one way a server can break RFC 9113 (or, in a few
// rows, only be unusual), and how the client must end.
type conformanceRow struct {
	name   string
	script h2test.Script
	config func(*http.HTTP2Config) // changes testConfig
	// run is the client's side; nil: connectAndRead.
	run  func(t *testing.T, cc *ClientConn, settle func()) outcome
	data string // what the client delivers before the end
	want ending
}

// connectAndRead opens a CONNECT stream, writes "hi", lets the client
// react to what the server sent (settle), and reads to the end.
func connectAndRead(t *testing.T, cc *ClientConn, settle func()) outcome {
	st, err := cc.NewStream(connectFields, false)
	if err != nil {
		return outcome{err: err}
	}
	defer st.Close()
	st.Write([]byte("hi")) // fails once the server broke the stream
	settle()
	return readStream(st)
}

// getAndRead is connectAndRead for a GET, whose request ends with its
// HEADERS, so that the stream closes both ways with the response.
func getAndRead(t *testing.T, cc *ClientConn, settle func()) outcome {
	st, err := cc.NewStream(getFields, true)
	if err != nil {
		return outcome{err: err}
	}
	defer st.Close()
	settle()
	return readStream(st)
}

// run is a script's Run from a function of the connection and stream.
func run(f func(c *h2test.Conn, id uint32)) h2test.Script { return h2test.Script{Run: f} }

// respond is a script that answers 200 and then calls f.
func respond(f func(c *h2test.Conn, id uint32)) h2test.Script {
	return run(func(c *h2test.Conn, id uint32) {
		c.Respond(id, "200")
		f(c, id)
	})
}

// headers is a script that sends one response header block.
func headers(end bool, fields ...string) h2test.Script {
	return run(func(c *h2test.Conn, id uint32) { c.Headers(id, end, fields...) })
}

// settingsScript is a script that sends a second SETTINGS frame.
func settingsScript(st ...http2.Setting) h2test.Script {
	return run(func(c *h2test.Conn, id uint32) { c.WriteSettings(st...) })
}

// raw is a script that sends one frame as it is.
func raw(typ http2.FrameType, flags http2.Flags, stream uint32, payload []byte) h2test.Script {
	return run(func(c *h2test.Conn, id uint32) { c.WriteRawFrame(typ, flags, stream, payload) })
}

// bigFields are n fields with values of size bytes from the byte seq
// (cycled), as name, value pairs.
func bigFields(n, size int, seq string) []string {
	value := strings.Repeat(seq, size/len(seq)+1)[:size]
	var fields []string
	for i := range n {
		fields = append(fields, "x-big-"+string(rune('a'+i%26))+strings.Repeat("z", i/26), value)
	}
	return fields
}

// noisy is a byte sequence that Huffman coding does not shrink much.
const noisy = "q7#Z~xK^vW|j`Q{9<@J>;%&*[]P!Y0$}_=X+"

var conformanceRows = []conformanceRow{
	// Stream states (RFC 9113 §5.1).
	{name: "DATA after END_STREAM", script: respond(func(c *h2test.Conn, id uint32) {
		c.WriteData(id, true, []byte("hello"))
		c.WriteData(id, false, []byte("extra"))
	}), data: "hello", want: wantStreamErr(http2.ErrCodeStreamClosed)},
	{name: "HEADERS after END_STREAM", script: respond(func(c *h2test.Conn, id uint32) {
		c.WriteData(id, true, []byte("hello"))
		c.Headers(id, true, "x-late", "1")
	}), data: "hello", want: wantStreamErr(http2.ErrCodeStreamClosed)},
	{name: "DATA on a stream never opened", script: respond(func(c *h2test.Conn, id uint32) {
		c.WriteData(id+2, false, []byte("x"))
	}), want: wantConnErr(http2.ErrCodeProtocol)},
	{name: "HEADERS on a stream never opened", script: respond(func(c *h2test.Conn, id uint32) {
		c.Headers(id+2, false, ":status", "200")
	}), want: wantConnErr(http2.ErrCodeProtocol)},
	{name: "HEADERS on a stream only the server could open", script: respond(func(c *h2test.Conn, id uint32) {
		c.Headers(2, false, ":status", "200")
	}), want: wantConnErr(http2.ErrCodeProtocol)},
	{name: "WINDOW_UPDATE on a stream never opened", script: respond(func(c *h2test.Conn, id uint32) {
		c.WriteWindowUpdate(id+2, 1)
	}), want: wantConnErr(http2.ErrCodeProtocol)},
	{name: "RST_STREAM on a stream never opened", script: respond(func(c *h2test.Conn, id uint32) {
		c.WriteRSTStream(id+2, http2.ErrCodeCancel)
	}), want: wantConnErr(http2.ErrCodeProtocol)},
	{name: "DATA on a stream closed both ways", run: getAndRead, script: respond(func(c *h2test.Conn, id uint32) {
		c.WriteData(id, true, []byte("x"))
		c.WriteData(id, false, []byte("late"))
	}), data: "x", want: wantClosedStreamErr()},
	{name: "HEADERS on a stream closed both ways", run: getAndRead, script: respond(func(c *h2test.Conn, id uint32) {
		c.WriteData(id, true, []byte("x"))
		c.Headers(id, false, ":status", "200")
	}), data: "x", want: wantClosedStreamErr()},
	{name: "DATA on a stream the server reset", script: respond(func(c *h2test.Conn, id uint32) {
		c.WriteRSTStream(id, http2.ErrCodeCancel)
		c.WriteData(id, false, []byte("late"))
	}), want: ending{
		err:   &StreamError{Code: http2.ErrCodeCancel, Remote: true},
		react: &h2test.Reaction{Type: http2.FrameRSTStream, Code: http2.ErrCodeStreamClosed},
	}},
	{name: "DATA on stream 0", script: raw(http2.FrameData, 0, 0, []byte("x")), want: wantConnErr(http2.ErrCodeProtocol)},

	// The shape of a response (§8.1, §8.1.1, §8.6).
	{name: "DATA before the response HEADERS", script: run(func(c *h2test.Conn, id uint32) {
		c.WriteData(id, false, []byte("early"))
	}), want: wantStreamErr(http2.ErrCodeProtocol)},
	{name: "DATA after an interim response", script: run(func(c *h2test.Conn, id uint32) {
		c.Respond(id, "103")
		c.WriteData(id, false, []byte("early"))
	}), want: wantStreamErr(http2.ErrCodeProtocol)},
	{name: "a 1xx response with END_STREAM", script: headers(true, ":status", "103"), want: wantStreamErr(http2.ErrCodeProtocol)},
	{name: "more interim responses than the client takes", script: run(func(c *h2test.Conn, id uint32) {
		for range clientMax1xx + 1 {
			c.Respond(id, "103")
		}
		c.Respond(id, "200")
	}), want: wantStreamErr(http2.ErrCodeProtocol)},
	{name: "101 Switching Protocols", script: headers(false, ":status", "101"), want: wantStreamErr(http2.ErrCodeProtocol)},
	{name: "trailers without END_STREAM", script: respond(func(c *h2test.Conn, id uint32) {
		c.WriteData(id, false, []byte("body"))
		c.Headers(id, false, "x-trailer", "1")
	}), data: "body", want: wantStreamErr(http2.ErrCodeProtocol)},
	{name: "a pseudo-field in trailers", script: respond(func(c *h2test.Conn, id uint32) {
		c.Headers(id, true, ":status", "200")
	}), want: wantStreamErr(http2.ErrCodeProtocol)},
	{name: "a body longer than its Content-Length", run: getAndRead, script: run(func(c *h2test.Conn, id uint32) {
		c.Headers(id, false, ":status", "200", "content-length", "3")
		c.WriteData(id, true, []byte("hello"))
	}), want: wantStreamErr(http2.ErrCodeProtocol)},
	{name: "a body shorter than its Content-Length", run: getAndRead, script: run(func(c *h2test.Conn, id uint32) {
		c.Headers(id, false, ":status", "200", "content-length", "10")
		c.WriteData(id, true, []byte("hello"))
	}), data: "hello", want: wantStreamErr(http2.ErrCodeProtocol)},
	{name: "an invalid Content-Length", run: getAndRead, script: headers(true, ":status", "200", "content-length", "1x"),
		want: wantStreamErr(http2.ErrCodeProtocol)},

	// Header blocks (§4.3, §8.2, §8.3, §10.5).
	{name: "a status that is no number", script: headers(false, ":status", "2x0"), want: wantStreamErr(http2.ErrCodeProtocol)},
	{name: "no :status", script: headers(false, "server", "x"), want: wantStreamErr(http2.ErrCodeProtocol)},
	{name: "two :status", script: headers(false, ":status", "200", ":status", "204"), want: wantStreamErr(http2.ErrCodeProtocol)},
	{name: "a request pseudo-field in a response", script: headers(false, ":status", "200", ":path", "/"), want: wantStreamErr(http2.ErrCodeProtocol)},
	{name: "a pseudo-field after a regular one", script: headers(false, "server", "x", ":status", "200"), want: wantStreamErr(http2.ErrCodeProtocol)},
	{name: "an upper-case field name", script: headers(false, ":status", "200", "X-Bad", "1"), want: wantStreamErr(http2.ErrCodeProtocol)},
	{name: "CR LF in a field value", script: headers(false, ":status", "200", "x-bad", "a\r\nx-evil: 1"), want: wantStreamErr(http2.ErrCodeProtocol)},
	{name: "white space around a field value", script: headers(false, ":status", "200", "x-bad", " a"), want: wantStreamErr(http2.ErrCodeProtocol)},
	{name: "a connection-specific field", script: headers(false, ":status", "200", "connection", "keep-alive"), want: wantStreamErr(http2.ErrCodeProtocol)},
	{name: "HPACK that does not decode", script: run(func(c *h2test.Conn, id uint32) {
		c.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: []byte{0x80}, EndHeaders: true})
	}), want: wantConnErr(http2.ErrCodeCompression)},
	{name: "a header list larger than the client takes", script: run(func(c *h2test.Conn, id uint32) {
		fields := append([]string{":status", "200"}, bigFields(20, 60000, "a")...)
		c.HeaderBlock(id, false, c.Block(fields...), minFrame)
	}), want: wantStreamErr(http2.ErrCodeProtocol)},
	{name: "a header block of more than 2 MiB", script: run(func(c *h2test.Conn, id uint32) {
		fields := append([]string{":status", "200"}, bigFields(60, 60000, noisy)...)
		c.HeaderBlock(id, false, c.Block(fields...), minFrame)
	}), want: wantConnErr(http2.ErrCodeProtocol)},
	{name: "a field longer than the client takes", script: run(func(c *h2test.Conn, id uint32) {
		fields := append([]string{":status", "200"}, bigFields(1, 3<<19, "a")...)
		c.HeaderBlock(id, false, c.Block(fields...), minFrame)
	}), want: wantConnErr(http2.ErrCodeCompression)},

	// CONTINUATION (§6.10).
	{name: "a flood of empty CONTINUATION frames", script: run(func(c *h2test.Conn, id uint32) {
		block := c.Block(":status", "200")
		if c.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block}) != nil {
			return
		}
		for range 1 << 20 { // until the client hangs up
			if c.WriteContinuation(id, false, nil) != nil {
				return
			}
		}
	}), want: wantConnErr(http2.ErrCodeEnhanceYourCalm)},
	{name: "CONTINUATION without HEADERS", script: run(func(c *h2test.Conn, id uint32) {
		c.WriteContinuation(id, true, c.Block(":status", "200"))
	}), want: wantConnErr(http2.ErrCodeProtocol)},
	{name: "another frame inside a header block", script: run(func(c *h2test.Conn, id uint32) {
		c.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.Block(":status", "200")})
		c.WritePing(false, [8]byte{})
	}), want: wantConnErr(http2.ErrCodeProtocol)},
	{name: "CONTINUATION on another stream", script: run(func(c *h2test.Conn, id uint32) {
		block := c.Block(":status", "200")
		c.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block[:1]})
		c.WriteContinuation(id+2, true, block[1:])
	}), want: wantConnErr(http2.ErrCodeProtocol)},

	// SETTINGS (§3.4, §6.5).
	{name: "a preface that is not SETTINGS", script: h2test.Script{Preface: func(c *h2test.Conn) error {
		if err := c.WritePing(false, [8]byte{}); err != nil {
			return err
		}
		return c.WriteSettings()
	}}, want: wantConnErr(http2.ErrCodeProtocol)},
	{name: "SETTINGS_ENABLE_PUSH = 1 from the server", script: settingsScript(http2.Setting{ID: http2.SettingEnablePush, Val: 1}),
		want: wantConnErr(http2.ErrCodeProtocol)},
	{name: "SETTINGS_INITIAL_WINDOW_SIZE past 2^31-1", script: settingsScript(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 31}),
		want: wantConnErr(http2.ErrCodeFlowControl)},
	{name: "SETTINGS_MAX_FRAME_SIZE below 16384", script: settingsScript(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1000}),
		want: wantConnErr(http2.ErrCodeProtocol)},
	{name: "SETTINGS_MAX_FRAME_SIZE past 2^24-1", script: settingsScript(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 24}),
		want: wantConnErr(http2.ErrCodeProtocol)},
	{name: "SETTINGS whose length is no multiple of 6", script: raw(http2.FrameSettings, 0, 0, make([]byte, 5)),
		want: wantConnErr(http2.ErrCodeFrameSize)},
	{name: "SETTINGS on a stream", script: run(func(c *h2test.Conn, id uint32) {
		c.WriteRawFrame(http2.FrameSettings, 0, id, nil)
	}), want: wantConnErr(http2.ErrCodeProtocol)},
	{name: "a SETTINGS ACK with a payload", script: raw(http2.FrameSettings, http2.FlagSettingsAck, 0, make([]byte, 6)),
		want: wantConnErr(http2.ErrCodeFrameSize)},
	{name: "SETTINGS never acknowledged", script: h2test.Script{NoAck: true, Run: func(c *h2test.Conn, id uint32) { c.Respond(id, "200") }},
		config: func(cfg *http.HTTP2Config) { cfg.PingTimeout = 300 * time.Millisecond },
		want:   wantConnErr(http2.ErrCodeSettingsTimeout)},
	{name: "SETTINGS_INITIAL_WINDOW_SIZE that takes a stream's window past 2^31-1", script: run(func(c *h2test.Conn, id uint32) {
		// Up to 2^31-1 less the 2 bytes the client may have sent; then
		// 10 more.
		c.WriteWindowUpdate(id, maxWindow-initialWindow)
		c.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: initialWindow + 10})
	}), want: wantConnErr(http2.ErrCodeFlowControl)},

	// Flow control (§6.9).
	{name: "DATA beyond the stream window", script: respond(func(c *h2test.Conn, id uint32) {
		// One frame past the 64 KiB window: in smaller ones, what the
		// reader takes meanwhile is given back.
		c.WriteData(id, false, make([]byte, 80<<10))
	}), want: wantStreamErr(http2.ErrCodeFlowControl)},
	{name: "DATA beyond the connection window", script: respond(func(c *h2test.Conn, id uint32) {
		c.WriteData(id, false, make([]byte, 80<<10))
	}), config: func(cfg *http.HTTP2Config) {
		cfg.MaxReceiveBufferPerStream, cfg.MaxReceiveBufferPerConnection = 1<<20, initialWindow
	}, want: wantConnErr(http2.ErrCodeFlowControl)},
	{name: "a WINDOW_UPDATE past 2^31-1 on the stream", script: respond(func(c *h2test.Conn, id uint32) {
		c.WriteWindowUpdate(id, maxWindow)
	}), want: wantStreamErr(http2.ErrCodeFlowControl)},
	{name: "a WINDOW_UPDATE past 2^31-1 on the connection", script: respond(func(c *h2test.Conn, id uint32) {
		c.WriteWindowUpdate(0, maxWindow)
	}), want: wantConnErr(http2.ErrCodeFlowControl)},
	{name: "a WINDOW_UPDATE of 0 on the stream", script: respond(func(c *h2test.Conn, id uint32) {
		c.WriteWindowUpdate(id, 0)
	}), want: wantStreamErr(http2.ErrCodeProtocol)},
	{name: "a WINDOW_UPDATE of 0 on the connection", script: respond(func(c *h2test.Conn, id uint32) {
		c.WriteWindowUpdate(0, 0)
	}), want: wantConnErr(http2.ErrCodeProtocol)},

	// Push (§8.4).
	{name: "PUSH_PROMISE though push is off", script: run(func(c *h2test.Conn, id uint32) {
		c.WritePushPromise(http2.PushPromiseParam{StreamID: id, PromiseID: 2, BlockFragment: c.Block(":method", "GET"), EndHeaders: true})
	}), want: wantConnErr(http2.ErrCodeProtocol)},

	// GOAWAY and RST_STREAM racing new streams (§6.8, §8.7).
	{name: "GOAWAY that leaves the new stream out", script: run(func(c *h2test.Conn, id uint32) {
		c.WriteGoAway(0, http2.ErrCodeNo, nil)
	}), want: wantErr(ErrNotProcessed)},
	{name: "GOAWAY as a second stream arrives", run: secondStreamAfterGoAway, script: run(func(c *h2test.Conn, id uint32) {
		c.Respond(id, "200")
		if _, err := c.NextHeaders(); err != nil {
			return
		}
		c.WriteGoAway(id, http2.ErrCodeNo, nil) // the second stream is past it
		c.WriteData(id, true, []byte("first"))
	}), want: wantErr(ErrNotProcessed)},
	{name: "a new stream after GOAWAY", run: newStreamAfterGoAway, script: run(func(c *h2test.Conn, id uint32) {
		c.WriteGoAway(id, http2.ErrCodeNo, nil)
		c.Respond(id, "200")
		c.WriteData(id, true, []byte("first"))
	}), want: wantErr(ErrNotProcessed)},
	{name: "RST_STREAM(REFUSED_STREAM) as the stream arrives", script: run(func(c *h2test.Conn, id uint32) {
		c.WriteRSTStream(id, http2.ErrCodeRefusedStream)
	}), want: wantErr(ErrNotProcessed)},
	{name: "GOAWAY with an error, then the close, mid-stream", script: respond(func(c *h2test.Conn, id uint32) {
		c.WriteData(id, false, []byte("partial"))
		c.WriteGoAway(id, http2.ErrCodeInternal, []byte("bye"))
		c.Close()
	}), data: "partial", want: ending{err: &ConnError{Code: http2.ErrCodeInternal, Remote: true}}},

	// The rest of the frame layer (§4, §6.1).
	{name: "the connection cut mid-stream", script: respond(func(c *h2test.Conn, id uint32) {
		c.WriteData(id, false, []byte("partial"))
		c.Close()
	}), data: "partial", want: wantErr(errAny)},
	{name: "garbage instead of frames", script: run(func(c *h2test.Conn, id uint32) {
		c.Conn.Write(bytes.Repeat([]byte{0xff}, 64))
	}), want: wantConnErr(http2.ErrCodeFrameSize)},
	{name: "a frame larger than the client's SETTINGS_MAX_FRAME_SIZE", script: respond(func(c *h2test.Conn, id uint32) {
		c.WriteData(id, false, make([]byte, 1<<20+1))
	}), want: wantConnErr(http2.ErrCodeFrameSize)},
	{name: "DATA padding longer than the frame", script: respond(func(c *h2test.Conn, id uint32) {
		c.WriteRawFrame(http2.FrameData, http2.FlagDataPadded, id, []byte{10, 'a'})
	}), want: wantConnErr(http2.ErrCodeProtocol)},
	{name: "padded DATA (well-formed)", script: respond(func(c *h2test.Conn, id uint32) {
		c.WriteDataPadded(id, false, []byte("hel"), make([]byte, 10))
		c.WriteDataPadded(id, true, []byte("lo"), make([]byte, 200))
	}), data: "hello", want: ending{clean: true}},
}

// secondStreamAfterGoAway: a first stream, answered; a second, which the
// server's GOAWAY leaves out as it arrives; the first runs to its end.
func secondStreamAfterGoAway(t *testing.T, cc *ClientConn, settle func()) outcome {
	first, err := cc.NewStream(connectFields, false)
	if err != nil {
		return outcome{err: err}
	}
	defer first.Close()
	if _, _, err := first.AwaitResponse(context.Background()); err != nil {
		return outcome{err: err}
	}
	second, err := cc.NewStream(connectFields, false)
	if err != nil {
		return outcome{err: err}
	}
	defer second.Close()
	if o := readStream(first); o.err != nil || o.data != "first" {
		t.Errorf("the first stream, which the GOAWAY keeps: %q, %v", o.data, o.err)
	}
	return readStream(second)
}

// newStreamAfterGoAway opens a stream after the server's GOAWAY.
func newStreamAfterGoAway(t *testing.T, cc *ClientConn, settle func()) outcome {
	first, err := cc.NewStream(connectFields, false)
	if err != nil {
		return outcome{err: err}
	}
	defer first.Close()
	if o := readStream(first); o.err != nil || o.data != "first" {
		t.Errorf("the stream before the GOAWAY: %q, %v", o.data, o.err)
	}
	if cc.CanTakeNewStream() {
		t.Error("CanTakeNewStream after GOAWAY")
	}
	_, err = cc.NewStream(connectFields, false)
	return outcome{err: err}
}

// A server that breaks RFC 9113 in any of these ways ends the stream or
// the connection with an error, never with data it should not have sent,
// a clean EOF or a hang; and the client tells the server with RST_STREAM
// or GOAWAY.
func TestClientConformance(t *testing.T) {
	for _, row := range conformanceRows {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel()
			srv := h2test.NewServer(t, row.script)
			cfg := testConfig()
			if row.config != nil {
				row.config(cfg)
			}
			cc := dialScript(t, srv, cfg)
			var reacted h2test.Reaction
			answered := row.want.react == nil
			settle := func() {
				if !answered {
					reacted, answered = waitReaction(srv, *row.want.react)
				}
			}
			f := row.run
			if f == nil {
				f = connectAndRead
			}
			o := f(t, cc, settle)
			settle() // for runs that never settled
			if !answered {
				cc.mu.Lock()
				cerr := cc.err
				cc.mu.Unlock()
				t.Errorf("the client did not send %v %v (last seen: %+v; the client's connection: %v)", row.want.react.Type, row.want.react.Code, reacted, cerr)
			}
			if o.data != row.data {
				t.Errorf("read %.40q (%d bytes); want %q", o.data, len(o.data), row.data)
			}
			want := row.want.err
			if want == nil && !row.want.clean {
				t.Fatal("a row that wants neither an error nor a clean EOF")
			}
			if msg := matchErr(o.err, want); msg != "" {
				t.Error(msg)
			}
		})
	}
}
