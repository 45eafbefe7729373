package h2

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/porta443/porta/internal/h2/h2test"
	"golang.org/x/net/http2"
)

// padCheck takes the DATA frames of one direction of a stream, as they
// were written, and checks padding's promise: the first padFrames writes
// (within padBytes) go in padded frames, some of them by more than
// nothing, later ones are not padded, and the data is whole.
func padCheck(t *testing.T, frames []*http2.DataFrame, writes [][]byte) {
	t.Helper()
	var got []byte
	padded, some := 0, false
	for i, f := range frames {
		got = append(got, f.Data()...)
		pad := int(f.Length) - len(f.Data())
		if f.Header().Flags.Has(http2.FlagDataPadded) {
			padded++
			some = some || pad > 1 // more than the length byte
			if i >= padFrames {
				t.Errorf("frame %d is padded: only the first %d are", i, padFrames)
			}
		} else if i < padFrames && len(f.Data()) > 0 {
			t.Errorf("frame %d of %d bytes is not padded", i, len(f.Data()))
		}
	}
	if padded == 0 || !some {
		t.Fatalf("%d padded frames, none by more than the length byte", padded)
	}
	if !bytes.Equal(got, bytes.Join(writes, nil)) {
		t.Fatal("the data differs from what was written")
	}
}

// padWrites are a tunneled TLS handshake's first flights and then bulk.
func padWrites() [][]byte {
	var w [][]byte
	for i, n := range []int{517, 90, 1400, 3000, 80, 250, 64, 1200, 700, 5000, 9000} {
		w = append(w, bytes.Repeat([]byte{byte(i)}, n))
	}
	return w
}

// TestServerPadsTunedStreams: a stream whose handler tuned it with Pad
// has its first writes padded; an untuned one never.
func TestServerPadsTunedStreams(t *testing.T) {
	writes := padWrites()
	ts := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/tuned" {
			w.(Tuner).Tune(Tuning{Pad: true})
		}
		for _, p := range writes {
			w.Write(p)
			w.(http.Flusher).Flush()
		}
	}))
	for _, path := range []string{"/tuned", "/plain"} {
		rc := dialRaw(t, ts, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
		rc.WriteWindowUpdate(0, 1<<20)
		rc.Request(1, "GET", path, true)
		var frames []*http2.DataFrame
		for {
			f := rc.Until(10*time.Second, "DATA", func(f http2.Frame) bool { _, ok := f.(*http2.DataFrame); return ok }).(*http2.DataFrame)
			if len(f.Data()) > 0 {
				frames = append(frames, copyData(f)) // the Framer reuses its frames
			}
			if f.StreamEnded() {
				break
			}
		}
		if path == "/plain" {
			for i, f := range frames {
				if f.Header().Flags.Has(http2.FlagDataPadded) {
					t.Fatalf("frame %d of an untuned stream is padded", i)
				}
			}
			continue
		}
		padCheck(t, frames, writes)
	}
}

// copyData keeps a DATA frame past the next ReadFrame.
func copyData(f *http2.DataFrame) *http2.DataFrame {
	fr := http2.NewFramer(io.Discard, bytes.NewReader(frameBytes(f)))
	g, _ := fr.ReadFrame()
	return g.(*http2.DataFrame)
}

// frameBytes writes f again, with the same padding length.
func frameBytes(f *http2.DataFrame) []byte {
	var b bytes.Buffer
	pad := int(f.Length) - len(f.Data())
	fr := http2.NewFramer(&b, nil)
	if f.Header().Flags.Has(http2.FlagDataPadded) {
		fr.WriteDataPadded(f.StreamID, f.StreamEnded(), f.Data(), make([]byte, pad-1))
	} else {
		fr.WriteData(f.StreamID, f.StreamEnded(), f.Data())
	}
	return b.Bytes()
}

// TestClientPadsFirstWrites: a ClientStream with PadFirst pads its first
// writes, and the server reads every byte.
func TestClientPadsFirstWrites(t *testing.T) {
	writes := padWrites()
	got := make(chan []*http2.DataFrame, 1)
	srv := h2test.NewServer(t, h2test.Script{Run: func(c *h2test.Conn, id uint32) {
		c.Respond(id, "200")
		var frames []*http2.DataFrame
		for {
			d, err := c.NextData()
			if err != nil {
				got <- nil
				return
			}
			if len(d.Data()) > 0 {
				frames = append(frames, copyData(d))
				c.WriteWindowUpdate(0, d.Length)
				c.WriteWindowUpdate(id, d.Length)
			}
			if d.StreamEnded() {
				got <- frames
				return
			}
		}
	}})
	cc := dialScript(t, srv, testConfig())
	st, err := cc.NewStream(connectFields, false)
	if err != nil {
		t.Fatal(err)
	}
	st.PadFirst()
	for _, p := range writes {
		if _, err := st.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	st.CloseWrite()
	select {
	case frames := <-got:
		padCheck(t, frames, writes)
	case <-time.After(10 * time.Second):
		t.Fatal("the server never got the end of the stream")
	}
}
