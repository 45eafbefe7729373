package h2

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// FuzzServerConn feeds a server connection arbitrary bytes after the
// client preface: whatever they are, the server answers or hangs up,
// never panics, and its read loop and handlers end once the client is
// gone.
func FuzzServerConn(f *testing.F) {
	f.Add(seedFrames(func(fr *http2.Framer, enc func(...string) []byte) {
		fr.WriteSettings()
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: enc(":method", "POST", ":scheme", "https", ":authority", "x", ":path", "/"), EndHeaders: true})
		fr.WriteData(1, true, []byte("body"))
	}))
	f.Add(seedFrames(func(fr *http2.Framer, enc func(...string) []byte) {
		fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: enc(":method", "GET", ":scheme", "https", ":path", "/", "trailer", "x"), EndHeaders: false})
		fr.WriteContinuation(3, true, enc("a", "b"))
		fr.WriteRSTStream(3, http2.ErrCodeCancel)
		fr.WritePing(false, [8]byte{1})
		fr.WriteWindowUpdate(0, 1<<30)
		fr.WriteGoAway(0, http2.ErrCodeNo, nil)
	}))
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 5, 1, 5, 0, 0, 0, 1})
	srv := &Server{settingsTimeout: 50 * time.Millisecond, goAwayTimeout: 10 * time.Millisecond}
	hs := &http.Server{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, r.Body)
		w.Header().Set(http.TrailerPrefix+"X-Done", "1")
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		state := &tls.ConnectionState{Version: tls.VersionTLS13, HandshakeComplete: true}
		sc := newServerConn(srv, hs, server, state, handler, context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc.serve()
		}()
		go io.Copy(io.Discard, client)
		client.SetWriteDeadline(time.Now().Add(2 * time.Second))
		io.WriteString(client, clientPreface)
		client.Write(data)
		client.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the server connection did not end after the client left")
		}
	})
}

// seedFrames is the bytes write makes with a Framer and an encoder.
func seedFrames(write func(fr *http2.Framer, enc func(...string) []byte)) []byte {
	var out bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	var hb bytes.Buffer
	henc := hpack.NewEncoder(&hb)
	write(fr, func(kv ...string) []byte {
		hb.Reset()
		for i := 0; i+1 < len(kv); i += 2 {
			henc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
		}
		return append([]byte(nil), hb.Bytes()...)
	})
	return out.Bytes()
}
