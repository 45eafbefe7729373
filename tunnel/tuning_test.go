package tunnel

import (
	"testing"
	"time"

	"github.com/porta443/porta/internal/h2/h2test"
	"golang.org/x/net/http2"
)

// TestTunedOnlyAfterAuth: on porta's HTTP/2 server everyone is offered
// net/http's defaults; an authenticated tunnel then grows its stream's
// and its connection's windows and the stream limit, and its first DATA
// comes padded, and a proxy request without valid credentials (answered
// by the website) changes nothing.
func TestTunedOnlyAfterAuth(t *testing.T) {
	ts := newTunnelServer(t, HandlerConfig{AllowPrivate: true})
	target := echoTarget(t)
	c := h2test.Dial(t, ts.addr, ts.cert.ClientTLS("h2"))
	connect := func(id uint32, auth string) {
		c.Headers(id, false, ":method", "CONNECT", ":authority", target, "proxy-authorization", auth)
	}
	// tunedAndPadded reads frames for a while and reports the growth seen,
	// and whether stream 3's DATA came padded.
	tunedAndPadded := func() (streams map[uint32]uint32, maxStreams uint32, pad bool) {
		streams = map[uint32]uint32{}
		deadline := time.Now().Add(500 * time.Millisecond)
		for {
			f, err := c.Next(time.Until(deadline))
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.WindowUpdateFrame:
				streams[f.StreamID] += f.Increment
			case *http2.SettingsFrame:
				if v, ok := f.Value(http2.SettingMaxConcurrentStreams); ok && !f.IsAck() {
					maxStreams = v
				}
			case *http2.DataFrame:
				if f.StreamID == 3 && string(f.Data()) == "ping" {
					pad = f.Header().Flags.Has(http2.FlagDataPadded)
				}
			}
		}
	}
	tuned := func() (map[uint32]uint32, uint32) {
		s, m, _ := tunedAndPadded()
		return s, m
	}
	first, _ := tuned() // the preface's
	if first[0] != 1<<20-65535 {
		t.Fatalf("the connection's first window: +%d, want net/http's", first[0])
	}
	connect(1, basicAuth(testUser, "wrong-token"))
	if grew, limit := tuned(); len(grew) != 0 || limit != 0 {
		t.Fatalf("a refused proxy request grew windows %v, stream limit to %d", grew, limit)
	}
	connect(3, basicAuth(testUser, testToken))
	c.WriteData(3, false, []byte("ping"))
	grew, limit, padded := tunedAndPadded()
	want := ServerHTTP2Tuning()
	if !padded {
		t.Error("the tunnel's first DATA back was not padded")
	}
	if grew[3] != uint32(want.StreamWindow)-1<<20 || grew[0] != uint32(want.ConnWindow)-1<<20 || limit != want.MaxStreams {
		t.Fatalf("an authenticated tunnel grew windows %v, stream limit to %d; want stream +%d, connection +%d, %d streams",
			grew, limit, want.StreamWindow-1<<20, want.ConnWindow-1<<20, want.MaxStreams)
	}
}
