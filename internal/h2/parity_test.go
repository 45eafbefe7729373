package h2

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/porta443/porta/internal/h2/h2test"
	"golang.org/x/net/http2"
)

// The same requests to this package's server and to net/http's, frame by
// frame: what a client sees must be the same, the first SETTINGS and
// WINDOW_UPDATE included, down to the order of the response's fields.

type parityCase struct {
	name    string
	handler http.HandlerFunc
	send    func(rc *h2test.Client) // the request, on stream 1
}

func get(path string, extra ...string) func(rc *h2test.Client) {
	return func(rc *h2test.Client) { rc.Request(1, "GET", path, true, extra...) }
}

func post(body string, extra ...string) func(rc *h2test.Client) {
	return func(rc *h2test.Client) {
		rc.Request(1, "POST", "/", false, extra...)
		rc.WriteData(1, true, []byte(body))
	}
}

var parityCases = []parityCase{
	{"small body", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }, get("/")},
	{"not found", http.NotFound, get("/x")},
	{"error page", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }, get("/")},
	{"HEAD", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }, func(rc *h2test.Client) { rc.Request(1, "HEAD", "/", true) }},
	{"fields sorted", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-B", "2")
		h.Set("X-A", "1")
		h.Add("Set-Cookie", "a=1")
		h.Add("Set-Cookie", "b=2")
		h.Set("Server", "porta-test")
		h.Set("Content-Type", "text/plain")
		h.Set("Transfer-Encoding", "chunked")
		h.Set("Connection", "keep-alive")
		io.WriteString(w, "x")
	}, get("/")},
	{"10 KB", func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, 10<<10)) }, get("/")},
	{"100 KB in small writes", func(w http.ResponseWriter, r *http.Request) {
		for range 100 {
			w.Write(make([]byte, 1000))
		}
	}, get("/")},
	{"flushed chunks", func(w http.ResponseWriter, r *http.Request) {
		for i := range 3 {
			fmt.Fprintf(w, "chunk %d\n", i)
			w.(http.Flusher).Flush()
		}
	}, get("/")},
	{"content-length set", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "hello")
	}, get("/")},
	{"no content", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }, get("/")},
	{"not modified", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Etag", `"v1"`)
		w.WriteHeader(304)
	}, get("/")},
	{"encoded, no type", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		io.WriteString(w, "\x1f\x8b...")
	}, get("/")},
	{"declared trailers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum, X-Count")
		io.WriteString(w, "body")
		w.Header().Set("X-Sum", "abc")
		w.Header().Set("X-Count", "1")
	}, get("/")},
	{"prefix trailers", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "body")
		w.(http.Flusher).Flush()
		w.Header().Set(http.TrailerPrefix+"X-Late", "yes")
	}, get("/")},
	{"early hints", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(103)
		io.WriteString(w, "page")
	}, get("/")},
	{"post echo", func(w http.ResponseWriter, r *http.Request) { io.Copy(w, r.Body) }, post("ping")},
	{"100-continue", func(w http.ResponseWriter, r *http.Request) { io.Copy(w, r.Body) }, func(rc *h2test.Client) {
		rc.Request(1, "POST", "/", false, "expect", "100-continue", "content-length", "4")
		time.Sleep(100 * time.Millisecond) // the 100 goes out when the handler reads
		rc.WriteData(1, true, []byte("ping"))
	}},
	{"body left unread", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "early") }, func(rc *h2test.Client) {
		rc.Request(1, "POST", "/", false)
	}},
	{"connection close", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	}, get("/")},
	{"panic", func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }, get("/")},
	{"panic after header", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}, get("/")},
	{"connection-specific request field", func(w http.ResponseWriter, r *http.Request) {}, get("/", "connection", "keep-alive")},
	{"file server range", func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "f.txt", time.Unix(1e9, 0), strings.NewReader(strings.Repeat("0123456789", 100)))
	}, get("/f.txt", "range", "bytes=10-19")},
	{"OPTIONS *", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "not for *") }, func(rc *h2test.Client) {
		rc.Request(1, "OPTIONS", "*", true)
	}},
	{"malformed: no path", func(w http.ResponseWriter, r *http.Request) {}, func(rc *h2test.Client) {
		rc.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: rc.Block(":method", "GET", ":scheme", "https", ":authority", "localhost"), EndStream: true, EndHeaders: true})
	}},
	{"CONNECT", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "%s %s %q", r.Method, r.Host, r.URL.Path) }, func(rc *h2test.Client) {
		rc.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: rc.Block(":method", "CONNECT", ":authority", "example.com:443"), EndStream: true, EndHeaders: true})
	}},
	{"extended CONNECT refused", func(w http.ResponseWriter, r *http.Request) {}, func(rc *h2test.Client) {
		rc.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: rc.Block(":method", "CONNECT", ":protocol", "websocket", ":scheme", "https", ":authority", "localhost", ":path", "/"), EndStream: true, EndHeaders: true})
	}},
}

func TestParityWithNetHTTP(t *testing.T) {
	for _, tc := range parityCases {
		t.Run(tc.name, func(t *testing.T) {
			ours := transcript(t, newServer(t, tc.handler), tc.send)
			std := transcript(t, newStdServer(t, tc.handler), tc.send)
			if ours != std {
				t.Errorf("porta's server sends\n%s\nnet/http's sends\n%s", ours, std)
			}
		})
	}
}

// transcript sends a request and writes down what comes back: the
// connection's first frames, then stream 1's frames until it ends (Date
// values left out, as they change), then the GOAWAY if one came. A
// graceful GOAWAY that lets stream 1 finish is written after the stream's
// frames: net/http sends the one of "Connection: close" before or after
// the response's HEADERS, as its goroutines are scheduled.
func transcript(t *testing.T, ts *testServer, send func(rc *h2test.Client)) string {
	rc := dialRaw(t, ts, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	rc.WriteWindowUpdate(0, 1<<20)
	var b strings.Builder
	// The server's SETTINGS, its connection WINDOW_UPDATE and the ack of
	// ours come in an order that depends on scheduling: sorted.
	var first []string
	for len(first) < 3 {
		f, err := rc.Next(5 * time.Second)
		if err != nil {
			t.Fatalf("first frames: %v", err)
		}
		first = append(first, h2test.Describe(f))
	}
	slices.Sort(first)
	b.WriteString(strings.Join(first, "\n") + "\n")
	rc.WriteSettingsAck()
	send(rc)
	var goAway string
	for {
		f, err := rc.Next(5 * time.Second)
		if err != nil {
			fmt.Fprintf(&b, "read: %v\n", closedOrTimeout(err))
			break
		}
		if f.Header().StreamID == 0 && !isGoAway(f) {
			continue // window updates for the request body
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			goAway = h2test.Describe(f) + "\n"
			if ga.ErrCode == http2.ErrCodeNo && ga.LastStreamID >= 1 {
				continue // graceful: stream 1 goes on
			}
			break
		}
		b.WriteString(h2test.Describe(f) + "\n")
		if f.Header().Flags.Has(http2.FlagDataEndStream) && f.Header().Type != http2.FrameSettings || f.Header().Type == http2.FrameRSTStream {
			if f.Header().Type != http2.FrameRSTStream {
				// A reset may follow an END_STREAM (a body left unread),
				// and so may the GOAWAY.
				for {
					f2, err := rc.Next(300 * time.Millisecond)
					if err != nil {
						break
					}
					if isGoAway(f2) && goAway == "" {
						goAway = h2test.Describe(f2) + "\n"
						continue
					}
					if f2.Header().Type == http2.FrameRSTStream {
						b.WriteString(h2test.Describe(f2) + "\n")
					}
					break
				}
			}
			break
		}
	}
	return b.String() + goAway
}

func isGoAway(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok }

func closedOrTimeout(err error) string {
	if strings.Contains(err.Error(), "timeout") {
		return "timeout"
	}
	return "closed"
}
