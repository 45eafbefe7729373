package tunnel

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Conn is the client end of one HTTP/2 connection, built on x/net/http2's
// Framer rather than net/http's Transport. The Transport copies each byte
// it receives three times (into a bufio.Reader, the Framer, a pipe per
// stream) before the reader's own copy; here the read loop decrypts a DATA
// frame straight into the buffer of a Read that is waiting for it, or into
// the stream's queue when none is. That was a fifth of the client's CPU per
// byte through --socks.
//
// It speaks what the tunnel needs: CONNECT streams and ordinary requests
// (DoH) from the client side, flow control both ways, SETTINGS, PING (the
// health check), RST_STREAM and GOAWAY. It refuses server push.
type h2Conn struct {
	conn net.Conn // a *tls.Conn that negotiated h2
	fr   *http2.Framer

	// The write side: frames go to bw under wmu. The writer that finds no
	// other writer waiting flushes, so frames written together share a
	// TLS record and a system call.
	wmu      sync.Mutex
	bw       *bufio.Writer
	hbuf     bytes.Buffer
	dataHdr  [9]byte // writeData's frame header
	henc     *hpack.Encoder
	wpending atomic.Int32
	werr     error // sticky, under wmu

	// Our receive windows: what we advertise, and when to top them up.
	streamWindow int32
	connWindow   int32

	mu         sync.Mutex
	streams    map[uint32]*h2ClientStream
	nextID     uint32
	err        error // why the connection ended; nil while it lives
	goAway     bool  // the server will take no new streams
	peerFrame  int   // the server's SETTINGS_MAX_FRAME_SIZE
	peerWindow int32 // the server's SETTINGS_INITIAL_WINDOW_SIZE
	outflow    int64 // connection send window
	inflow     int64 // connection receive window left to the server
	unacked    int64 // consumed on the connection, not yet given back
	blocked    map[*h2ClientStream]struct{}

	done      chan struct{}  // closed when the connection ends
	wg        sync.WaitGroup // the read loop, the health check and its pings
	lastFrame atomic.Int64   // unix ns of the last frame read
	pong      chan [8]byte

	peerMaxStreams atomic.Uint32 // the server's SETTINGS_MAX_CONCURRENT_STREAMS

	smallChunks, largeChunks sync.Pool // of *[]byte, for data waiting to be read
}

const (
	h2DefaultStreamWindow = 4 << 20
	h2DefaultConnWindow   = 1 << 30
	h2InitialWindow       = 65535 // RFC 9113 §6.9.2
	h2MaxWindow           = 1<<31 - 1
	h2MinFrame            = 16384
	h2MaxHeaderList       = 1 << 20
	h2ClientPreface       = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	h2MaxStreamID         = 1<<31 - 1 // the last a client may use
)

var errH2Closed = errors.New("h2: connection closed")

// newH2Conn starts HTTP/2 on conn, a TLS connection that negotiated "h2":
// it sends the preface, SETTINGS and the connection window, and starts the
// read loop and, when cfg asks for one, the health check.
func newH2Conn(conn net.Conn, cfg *http.HTTP2Config) (*h2Conn, error) {
	frameSize := clamp(cfg.MaxReadFrameSize, h2MinFrame, 1<<24-1, h2MinFrame)
	c := &h2Conn{
		conn:         conn,
		bw:           bufio.NewWriterSize(conn, 16<<10),
		streamWindow: int32(clamp(cfg.MaxReceiveBufferPerStream, 1, h2MaxWindow, h2DefaultStreamWindow)),
		connWindow:   int32(clamp(cfg.MaxReceiveBufferPerConnection, h2InitialWindow, h2MaxWindow, h2DefaultConnWindow)),
		streams:      make(map[uint32]*h2ClientStream),
		nextID:       1,
		peerFrame:    h2MinFrame,
		peerWindow:   h2InitialWindow,
		outflow:      h2InitialWindow,
		blocked:      make(map[*h2ClientStream]struct{}),
		done:         make(chan struct{}),
		pong:         make(chan [8]byte, 1),
	}
	c.inflow = int64(c.connWindow)
	c.peerMaxStreams.Store(math.MaxUint32) // unlimited until the server says (RFC 9113 §6.5.2)
	c.henc = hpack.NewEncoder(&c.hbuf)
	c.fr = http2.NewFramer(c.bw, conn)
	c.fr.SetMaxReadFrameSize(uint32(frameSize))
	c.fr.MaxHeaderListSize = h2MaxHeaderList
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.lastFrame.Store(time.Now().UnixNano())
	err := c.write(func() error {
		if _, err := c.bw.WriteString(h2ClientPreface); err != nil {
			return err
		}
		err := c.fr.WriteSettings(
			http2.Setting{ID: http2.SettingEnablePush, Val: 0},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(c.streamWindow)},
			http2.Setting{ID: http2.SettingMaxFrameSize, Val: uint32(frameSize)},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: h2MaxHeaderList},
		)
		if err != nil {
			return err
		}
		if c.connWindow > h2InitialWindow {
			return c.fr.WriteWindowUpdate(0, uint32(c.connWindow-h2InitialWindow))
		}
		return nil
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("h2: %w", err)
	}
	c.wg.Add(1)
	go c.readLoop()
	if cfg.SendPingTimeout > 0 {
		timeout := cfg.PingTimeout
		if timeout <= 0 {
			timeout = 15 * time.Second
		}
		c.wg.Add(1)
		go c.health(cfg.SendPingTimeout, timeout)
	}
	return c, nil
}

// clamp is v within [lo, hi], or def when v is 0.
func clamp(v, lo, hi, def int) int {
	if v == 0 {
		return def
	}
	return min(max(v, lo), hi)
}

// alive reports whether new streams may be opened on c.
func (c *h2Conn) alive() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.openErr() == nil
}

// close ends the connection and every stream on it, and waits for the
// connection's goroutines.
func (c *h2Conn) close() error {
	c.fail(errH2Closed)
	c.wg.Wait()
	return nil
}

// fail ends the connection with err, once: streams read what they already
// have and then err.
func (c *h2Conn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	streams := make([]*h2ClientStream, 0, len(c.streams))
	for _, s := range c.streams {
		streams = append(streams, s)
	}
	clear(c.streams)
	clear(c.blocked)
	c.mu.Unlock()
	close(c.done)
	c.conn.Close()
	for _, s := range streams {
		s.fail(err, err)
	}
}

// write runs f, which writes frames, under the write lock, and flushes
// unless another writer is waiting to add its frames. An error ends the
// connection.
func (c *h2Conn) write(f func() error) error {
	c.wpending.Add(1)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		c.wpending.Add(-1)
		return c.werr
	}
	err := f()
	connOK := err == nil
	if !connOK {
		var nw errNoWrite // declared here: errors.As moves it to the heap
		connOK = errors.As(err, &nw)
	}
	if c.wpending.Add(-1) == 0 && connOK {
		if ferr := c.bw.Flush(); ferr != nil {
			err, connOK = ferr, false
		}
	}
	if !connOK {
		c.werr = err
		c.fail(fmt.Errorf("h2: write: %w", err)) // closes conn, which may be what blocks other writers
	}
	return err
}

// writeData writes one DATA frame. The header is written by hand so that a
// large payload goes from p to TLS without another copy (the Framer copies
// every payload into its own buffer first).
func (c *h2Conn) writeData(id uint32, p []byte, end bool) error {
	return c.write(func() error {
		// c's own header buffer, under the write lock: one on the stack
		// would escape through bufio.Writer (an allocation per frame).
		hdr := &c.dataHdr
		hdr[0], hdr[1], hdr[2] = byte(len(p)>>16), byte(len(p)>>8), byte(len(p))
		hdr[3] = byte(http2.FrameData)
		hdr[4] = 0
		if end {
			hdr[4] = byte(http2.FlagDataEndStream)
		}
		binary.BigEndian.PutUint32(hdr[5:], id)
		if _, err := c.bw.Write(hdr[:]); err != nil {
			return err
		}
		_, err := c.bw.Write(p)
		return err
	})
}

// openStream registers s under the next stream ID and sends its HEADERS
// (fields, in order), all under the write lock, since the server wants
// stream IDs in increasing order. An error that comes before the HEADERS
// went out is errNotProcessed: the stream can go on another connection.
func (c *h2Conn) openStream(s *h2ClientStream, fields []hpack.HeaderField, end bool) error {
	registered := false
	err := c.write(func() error {
		c.mu.Lock()
		if err := c.openErr(); err != nil {
			c.mu.Unlock()
			return errNoWrite{err}
		}
		registered = true
		s.id = c.nextID
		c.nextID += 2
		s.outflow = int64(c.peerWindow)
		s.inflow = int64(c.streamWindow)
		s.sentEnd = end
		c.streams[s.id] = s
		maxFrame := c.peerFrame
		c.mu.Unlock()

		c.hbuf.Reset()
		for _, f := range fields {
			if err := c.henc.WriteField(f); err != nil {
				return err
			}
		}
		block := c.hbuf.Bytes()
		first := block[:min(len(block), maxFrame)]
		block = block[len(first):]
		err := c.fr.WriteHeaders(http2.HeadersFrameParam{
			StreamID: s.id, BlockFragment: first, EndStream: end, EndHeaders: len(block) == 0,
		})
		for err == nil && len(block) > 0 {
			frag := block[:min(len(block), maxFrame)]
			block = block[len(frag):]
			err = c.fr.WriteContinuation(s.id, len(block) == 0, frag)
		}
		return err
	})
	if err != nil && !registered {
		var nw errNoWrite
		if errors.As(err, &nw) {
			err = nw.error
		}
		return fmt.Errorf("%w: %w", errNotProcessed, err)
	}
	return err
}

// openErr is why no stream may be opened on c now, or nil; c.mu is held.
func (c *h2Conn) openErr() error {
	switch {
	case c.err != nil:
		return c.err
	case c.goAway:
		return errGoingAway
	case c.nextID > h2MaxStreamID: // reserved while alive, after the last ID went
		return errIDsUsedUp
	}
	return nil
}

var (
	errGoingAway = errors.New("the server is going away")
	errIDsUsedUp = errors.New("stream IDs used up")
)

// errNoWrite is an error that wrote nothing: the connection stays usable.
type errNoWrite struct{ error }

func (e errNoWrite) Unwrap() error { return e.error }

// forget takes s off the connection and reports whether it was on it;
// c.mu is held.
func (c *h2Conn) forget(s *h2ClientStream) bool {
	if c.streams[s.id] != s {
		return false
	}
	delete(c.streams, s.id)
	delete(c.blocked, s)
	return true
}

// streamDone forgets s once both of its directions have ended; c.mu is
// held.
func (c *h2Conn) streamDone(s *h2ClientStream) {
	if s.sentEnd && s.recvEnd {
		c.forget(s)
	}
}

// reset ends s with RST_STREAM code unless it ended already.
func (c *h2Conn) reset(s *h2ClientStream, code http2.ErrCode) {
	c.mu.Lock()
	live := c.forget(s)
	c.mu.Unlock()
	if live {
		c.write(func() error { return c.fr.WriteRSTStream(s.id, code) })
	}
}

// resetWith resets s for a fault of the server's, which its reads and
// writes then return.
func (c *h2Conn) resetWith(s *h2ClientStream, code http2.ErrCode, err error) {
	c.reset(s, code)
	s.fail(err, err)
}
