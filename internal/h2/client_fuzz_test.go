package h2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// fuzzFrames builds a server's frames for the fuzz seeds.
type fuzzFrames struct {
	buf bytes.Buffer
	fr  *http2.Framer
	enc *hpack.Encoder
	hb  bytes.Buffer
}

func newFuzzFrames() *fuzzFrames {
	f := &fuzzFrames{}
	f.fr = http2.NewFramer(&f.buf, nil)
	f.fr.AllowIllegalWrites = true
	f.enc = hpack.NewEncoder(&f.hb)
	return f
}

func (f *fuzzFrames) block(fields ...string) []byte {
	f.hb.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		f.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return bytes.Clone(f.hb.Bytes())
}

func (f *fuzzFrames) headers(id uint32, end bool, fields ...string) *fuzzFrames {
	f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: f.block(fields...), EndStream: end, EndHeaders: true})
	return f
}

func (f *fuzzFrames) data(id uint32, end bool, p string) *fuzzFrames {
	f.fr.WriteData(id, end, []byte(p))
	return f
}

// FuzzClientFrames feeds a client what a server sends after its preface:
// arbitrary frames, on a CONNECT (stream 1) and a GET (stream 3). Whatever
// they are, each stream ends, with EOF only after a response and never
// with more than the DATA frames on it carried; nothing panics or hangs;
// and Close ends every goroutine.
func FuzzClientFrames(f *testing.F) {
	f.Add(newFuzzFrames().headers(1, false, ":status", "200").data(1, true, "hello").
		headers(3, false, ":status", "200", "content-length", "2").data(3, true, "ok").buf.Bytes())
	f.Add(newFuzzFrames().headers(1, false, ":status", "103").headers(1, false, ":status", "200").
		data(1, false, "a").headers(1, true, "x-trailer", "t").buf.Bytes())
	padded := newFuzzFrames().headers(1, false, ":status", "200")
	padded.fr.WriteDataPadded(1, true, []byte("pad"), make([]byte, 7))
	f.Add(padded.buf.Bytes())
	split := newFuzzFrames()
	b := split.block(":status", "200", "server", "fuzz")
	split.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b[:2]})
	split.fr.WriteContinuation(1, true, b[2:])
	split.fr.WriteWindowUpdate(1, 1000)
	split.fr.WritePing(false, [8]byte{1})
	split.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	split.fr.WriteRSTStream(3, http2.ErrCodeRefusedStream)
	split.fr.WriteGoAway(1, http2.ErrCodeNo, []byte("bye"))
	f.Add(split.buf.Bytes())
	f.Add(newFuzzFrames().data(1, false, "early").data(5, false, "stray").buf.Bytes())

	f.Fuzz(func(t *testing.T, frames []byte) {
		client, server := net.Pipe()
		var wg sync.WaitGroup
		wg.Go(func() { io.Copy(io.Discard, server) })
		wg.Go(func() {
			pre := http2.NewFramer(server, nil)
			pre.WriteSettings()
			pre.WriteSettingsAck()
			server.Write(frames)
			server.Close()
		})
		defer wg.Wait()
		cc, err := NewClientConn(client, testConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		connect, err := cc.NewStream(connectFields, false)
		if err != nil {
			return // the connection ended first
		}
		get, err := cc.NewStream(getFields, true)
		if err != nil {
			get = nil
		}
		connect.Write([]byte("hi"))
		for _, st := range []*ClientStream{connect, get} {
			if st == nil {
				continue
			}
			o := readStream(st)
			if errors.Is(o.err, errTimeout) {
				t.Fatalf("stream %d hung: %q so far", st.ID(), o.data)
			}
			if _, _, ok := st.Response(); o.err == nil && !ok {
				t.Fatalf("stream %d ended cleanly without a response", st.ID())
			}
			if max := dataOn(frames, st.ID()); len(o.data) > max {
				t.Fatalf("stream %d read %d bytes; its DATA frames carried at most %d", st.ID(), len(o.data), max)
			}
		}
	})
}

// dataOn is how many bytes the DATA frames on stream id in frames carry
// at most (their lengths, padding included).
func dataOn(frames []byte, id uint32) int {
	n := 0
	for len(frames) >= 9 {
		length := int(frames[0])<<16 | int(frames[1])<<8 | int(frames[2])
		if http2.FrameType(frames[3]) == http2.FrameData && binary.BigEndian.Uint32(frames[5:9])&(1<<31-1) == id {
			n += length
		}
		frames = frames[9:]
		frames = frames[min(length, len(frames)):]
	}
	return n
}
