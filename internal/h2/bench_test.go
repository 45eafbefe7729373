package h2

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// BenchmarkRequest is the server's cost of one small request and its
// answer, a DoH cache hit's shape: requests on one connection, 25 in
// flight, the answer written in one go with two header fields set. The
// client is a raw frame writer and reader, cheap beside the server.
func BenchmarkRequest(b *testing.B) {
	answer := make([]byte, 120)
	ts := newServer(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"application/dns-message"}
		h["Cache-Control"] = []string{"max-age=300"}
		w.Write(answer)
	}))
	rc := dialRaw(b, ts, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
	rc.WriteWindowUpdate(0, 1<<30)
	rc.WriteSettingsAck()
	const inflight = 25
	path := "/dns-query?dns=q80BAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB"
	extra := []string{"accept", "application/dns-message", "user-agent", "bench"}
	done := make(chan error, 1)
	sem := make(chan struct{}, inflight)
	go func() {
		n := 0
		for n < b.N {
			f, err := rc.Next(30 * time.Second)
			if err != nil {
				done <- err
				return
			}
			switch f := f.(type) {
			case *http2.DataFrame:
				if f.StreamEnded() {
					n++
					<-sem
				}
			case *http2.RSTStreamFrame:
				done <- fmt.Errorf("stream %d reset: %v", f.StreamID, f.ErrCode)
				return
			}
		}
		done <- nil
	}()
	b.ReportAllocs()
	b.ResetTimer()
	id := uint32(1)
	for i := 0; i < b.N; i++ {
		sem <- struct{}{}
		rc.Request(id, "GET", path, true, extra...)
		id += 2
	}
	if err := <-done; err != nil && err != io.EOF {
		b.Fatal(err)
	}
}
