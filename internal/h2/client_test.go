package h2

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/porta443/porta/internal/h2/h2test"
	"golang.org/x/net/http2"
)

// A server may end its response and go on reading the request (RFC 9113
// §8.1): the client keeps sending after END_STREAM until it is done, with
// the windows the server gives.
func TestClientWritesAfterTheResponseEnds(t *testing.T) {
	const upload = 1 << 20 // more than the initial windows
	got := make(chan int, 1)
	srv := h2test.NewServer(t, h2test.Script{Run: func(c *h2test.Conn, id uint32) {
		c.Respond(id, "200")
		c.WriteData(id, true, []byte("bye"))
		n := 0
		for {
			d, err := c.NextData()
			if err != nil {
				got <- -1
				return
			}
			n += len(d.Data())
			if len(d.Data()) > 0 {
				c.WriteWindowUpdate(0, uint32(len(d.Data())))
				c.WriteWindowUpdate(id, uint32(len(d.Data())))
			}
			if d.StreamEnded() {
				got <- n
				return
			}
		}
	}})
	cc := dialScript(t, srv, testConfig())
	st, err := cc.NewStream(connectFields, false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if o := readStream(st); o.err != nil || o.data != "bye" {
		t.Fatalf("the response: %q, %v", o.data, o.err)
	}
	st.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if n, err := st.Write(make([]byte, upload)); err != nil || n != upload {
		t.Fatalf("wrote %d bytes after the response ended: %v", n, err)
	}
	if err := st.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if n := <-got; n != upload {
		t.Fatalf("the server read %d bytes; want %d", n, upload)
	}
}

// Frames the server sent on a stream before it saw the client's
// RST_STREAM are dropped without another RST_STREAM (RFC 9113 §5.1), and
// the connection goes on.
func TestClientIgnoresFramesAfterItsReset(t *testing.T) {
	srv := h2test.NewServer(t, h2test.Script{Run: func(c *h2test.Conn, id uint32) {
		c.Respond(id, "200")
		c.WriteData(id, false, []byte("first"))
		for { // until the client's reset
			f, err := c.Next()
			if err != nil {
				return
			}
			if _, ok := f.(*http2.RSTStreamFrame); ok {
				break
			}
		}
		c.WriteData(id, false, make([]byte, 32<<10))
		c.Headers(id, true, "x-trailer", "1")
		c.WriteRSTStream(id, http2.ErrCodeCancel)
		next, err := c.NextHeaders()
		if err != nil {
			return
		}
		c.Respond(next, "200")
		c.WriteData(next, true, []byte("second"))
	}})
	cc := dialScript(t, srv, testConfig())
	st, err := cc.NewStream(connectFields, false)
	if err != nil {
		t.Fatal(err)
	}
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(st, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if r, err := srv.WaitReaction(30 * time.Second); err != nil || r.Code != http2.ErrCodeCancel {
		t.Fatalf("the client's reset: %+v, %v", r, err)
	}
	st2, err := cc.NewStream(connectFields, false)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if o := readStream(st2); o.err != nil || o.data != "second" {
		t.Fatalf("the next stream: %q, %v", o.data, o.err)
	}
	select {
	case r := <-srv.Reactions():
		t.Fatalf("the client answered frames on the stream it reset: %+v", r)
	default:
	}
}

// A connection opens streams up to the last ID a client may use
// (2^31-1); after that it takes none, and NewStream says the stream was
// not processed, so that it goes elsewhere.
func TestClientStreamIDsRunOut(t *testing.T) {
	srv := h2test.NewServer(t, h2test.Script{Run: func(c *h2test.Conn, id uint32) {}})
	cc := dialScript(t, srv, testConfig())
	first, err := cc.NewStream(connectFields, false)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	cc.mu.Lock()
	cc.nextID = maxStreamID
	cc.mu.Unlock()
	last, err := cc.NewStream(connectFields, false)
	if err != nil || last.ID() != maxStreamID {
		t.Fatalf("stream %v, %v; want the last ID, %d", last, err, maxStreamID)
	}
	defer last.Close()
	if cc.CanTakeNewStream() {
		t.Error("CanTakeNewStream after the last ID went")
	}
	if _, err := cc.NewStream(connectFields, false); !errors.Is(err, ErrNotProcessed) {
		t.Fatalf("a stream past the last ID: %v; want ErrNotProcessed", err)
	}
}

// A Close while CopyChunks has lent a chunk to dst (the relay closes a
// tunnel from its other direction) gives that chunk's bytes back to the
// connection window once, not twice: more would let the server send
// more than the client can hold, and past 2^31-1 fail the connection.
func TestClientCloseDuringCopyCreditsOnce(t *testing.T) {
	srv := h2test.NewServer(t, h2test.Script{Run: func(c *h2test.Conn, id uint32) {
		c.Respond(id, "200")
		for range 3 {
			c.WriteData(id, false, bytes.Repeat([]byte{'x'}, 16<<10))
		}
	}})
	cc := dialScript(t, srv, testConfig())
	st, err := cc.NewStream(connectFields, false)
	if err != nil {
		t.Fatal(err)
	}
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := st.AwaitResponse(context.Background()); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	var got int
	n, err := st.CopyChunks(func(p []byte) error { got = len(p); st.Close(); return stop })
	if !errors.Is(err, stop) || n != 0 || got == 0 {
		t.Fatalf("copy: %d bytes counted, %v; dst had %d", n, err, got)
	}
	cc.mu.Lock()
	over := cc.inflow + cc.unacked - int64(cc.connWindow)
	cc.mu.Unlock()
	if over > 0 {
		t.Fatalf("%d bytes given back to the connection window twice (the chunk lent had %d)", over, got)
	}
}
