package tunnel

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porta443/porta/internal/testenv"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// scriptedH2Server accepts TLS connections speaking h2 on 127.0.0.1. For
// each it reads the client's preface, sends empty SETTINGS, waits for the
// client's first HEADERS and runs script with that stream's ID; then it
// reads and drops what comes until the connection ends.
func scriptedH2Server(t *testing.T, script func(fr *http2.Framer, conn net.Conn, id uint32)) (addr string, cert *testenv.Cert) {
	cert = testenv.NewCert(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert.TLS}, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			serveScript(c, script)
		}
	}()
	return ln.Addr().String(), cert
}

func serveScript(c net.Conn, script func(fr *http2.Framer, conn net.Conn, id uint32)) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, len(http2.ClientPreface))); err != nil {
		return
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if fr.WriteSettings() != nil {
		return
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		if h, ok := f.(*http2.MetaHeadersFrame); ok {
			script(fr, c, h.StreamID)
			break
		}
	}
	for {
		if _, err := fr.ReadFrame(); err != nil {
			return
		}
	}
}

// respond200 sends the answer to a CONNECT.
func respond200(fr *http2.Framer, id uint32) {
	var b bytes.Buffer
	enc := hpack.NewEncoder(&b)
	enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: b.Bytes(), EndHeaders: true})
}

// A server that breaks HTTP/2 in any of these ways fails the tunnel with
// an error, never a clean EOF, a hang or a crash; one that is only
// unusual (padding) is understood.
func TestH2ClientAgainstMisbehavingServers(t *testing.T) {
	tests := []struct {
		name   string
		script func(fr *http2.Framer, conn net.Conn, id uint32)
		want   string // what Read gives: "" for an error
	}{
		{"padded data", func(fr *http2.Framer, _ net.Conn, id uint32) {
			respond200(fr, id)
			fr.WriteDataPadded(id, false, []byte("hel"), make([]byte, 10))
			fr.WriteDataPadded(id, true, []byte("lo"), make([]byte, 200))
		}, "hello"},
		{"data beyond the stream window", func(fr *http2.Framer, _ net.Conn, id uint32) {
			respond200(fr, id)
			// One frame bigger than the 64 KiB window: in smaller ones,
			// what the reader takes meanwhile is given back, and the
			// window may never be passed.
			fr.WriteData(id, false, make([]byte, 80<<10))
		}, ""},
		{"a status that is no number", func(fr *http2.Framer, _ net.Conn, id uint32) {
			var b bytes.Buffer
			hpack.NewEncoder(&b).WriteField(hpack.HeaderField{Name: ":status", Value: "2x0"})
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: b.Bytes(), EndHeaders: true})
		}, ""},
		{"a window update past 2^31-1", func(fr *http2.Framer, _ net.Conn, id uint32) {
			respond200(fr, id)
			fr.WriteWindowUpdate(id, 1<<31-1)
		}, ""},
		{"garbage instead of frames", func(_ *http2.Framer, c net.Conn, id uint32) {
			c.Write(bytes.Repeat([]byte{0xff}, 64))
		}, ""},
		{"GOAWAY before the stream", func(fr *http2.Framer, _ net.Conn, id uint32) {
			fr.WriteGoAway(0, http2.ErrCodeNo, nil)
		}, ""},
		{"a push", func(fr *http2.Framer, _ net.Conn, id uint32) {
			fr.WritePushPromise(http2.PushPromiseParam{StreamID: id, PromiseID: 2, EndHeaders: true})
		}, ""},
		{"a reset", func(fr *http2.Framer, _ net.Conn, id uint32) {
			fr.WriteRSTStream(id, http2.ErrCodeRefusedStream)
		}, ""},
		{"the connection cut mid-stream", func(fr *http2.Framer, c net.Conn, id uint32) {
			respond200(fr, id)
			fr.WriteData(id, false, []byte("partial"))
			c.Close()
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, cert := scriptedH2Server(t, tt.script)
			cfg := ClientHTTP2Config()
			cfg.MaxReceiveBufferPerStream = 64 << 10
			d, err := NewDialer(DialerConfig{
				Servers:   []string{serverURL(addr)},
				RootCAs:   cert.Pool,
				Transport: "h2",
				HTTP2:     cfg,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			c, err := d.DialContext(context.Background(), "tcp", "example.com:80")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write([]byte("hi")); err != nil && tt.want != "" {
				t.Fatalf("write: %v", err)
			}
			got, err := io.ReadAll(c)
			if errors.Is(err, errTimeout) {
				t.Fatalf("hung: read %d bytes, then the deadline", len(got))
			}
			switch {
			case tt.want != "" && (err != nil || string(got) != tt.want):
				t.Fatalf("read %.40q (%d bytes), %v; want %q and EOF", got, len(got), err, tt.want)
			case tt.want == "" && err == nil:
				t.Fatalf("read %d bytes and a clean EOF; want an error", len(got))
			}
		})
	}
}

// A request the server resets with REFUSED_STREAM was not processed
// (RFC 9113 §8.7): RoundTrip sends it once more. This server refuses
// every stream.
func TestH2RefusedStreamIsRetried(t *testing.T) {
	var refusals atomic.Int32
	addr, cert := scriptedH2Server(t, func(fr *http2.Framer, conn net.Conn, id uint32) {
		for {
			refusals.Add(1)
			if fr.WriteRSTStream(id, http2.ErrCodeRefusedStream) != nil {
				return
			}
			for { // the next request
				f, err := fr.ReadFrame()
				if err != nil {
					return
				}
				if h, ok := f.(*http2.MetaHeadersFrame); ok {
					id = h.StreamID
					break
				}
			}
		}
	})
	d, err := NewDialer(DialerConfig{Servers: []string{serverURL(addr)}, RootCAs: cert.Pool, Transport: "h2"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/", nil)
	if _, err := d.RoundTrip(req); err == nil {
		t.Fatal("RoundTrip succeeded against a server that refuses every stream")
	}
	if n := refusals.Load(); n != 2 {
		t.Fatalf("the server refused %d streams; want 2 (the request, then its one retry)", n)
	}
}
