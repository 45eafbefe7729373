package h2

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// ClientConn is the client end of one HTTP/2 connection. It is safe for
// concurrent use.
type ClientConn struct {
	conn net.Conn // a *tls.Conn that negotiated h2
	fr   *http2.Framer

	// The write side: frames go to bw under wmu. The writer that finds no
	// other writer waiting flushes, so frames written together share a
	// TLS record and a system call.
	wmu      sync.Mutex
	bw       *bufio.Writer
	hbuf     bytes.Buffer
	dw       dataWriter
	henc     *hpack.Encoder
	wpending atomic.Int32
	werr     error // sticky, under wmu

	// The read loop's own: the HPACK decoder, the header block it is
	// decoding, and whether the server's preface (SETTINGS) came.
	hdec        *hpack.Decoder
	block       clientHeaderBlock
	gotSettings bool

	// Our receive windows: what we advertise, and when to top them up.
	streamWindow int32
	connWindow   int32

	mu                sync.Mutex
	streams           map[uint32]*ClientStream
	nextID            uint32
	err               error         // why the connection ended; nil while it lives
	cause             *ConnError    // why abort is ending it: fail's error then
	goAway            bool          // the server will take no new streams
	goAwayErr         *ConnError    // the server's GOAWAY had an error code
	peerFrame         int           // the server's SETTINGS_MAX_FRAME_SIZE
	rng               *rand.ChaCha8 // padding lengths
	peerWindow        int32         // the server's SETTINGS_INITIAL_WINDOW_SIZE
	peerMaxHeaderList uint32        // the server's SETTINGS_MAX_HEADER_LIST_SIZE
	peerConnect       bool          // the server's SETTINGS_ENABLE_CONNECT_PROTOCOL
	outflow           int64         // connection send window
	inflow            int64         // connection receive window left to the server
	unacked           int64         // consumed on the connection, not yet given back
	blocked           map[*ClientStream]struct{}
	resets            clientResets // streams we reset lately

	done      chan struct{}  // closed when the connection ends
	acked     chan struct{}  // closed when the server acknowledges our SETTINGS
	settled   chan struct{}  // closed when the server's first SETTINGS are applied
	wg        sync.WaitGroup // the read loop, the watchdog and its pings
	lastFrame atomic.Int64   // unix ns of the last frame read
	pong      chan [8]byte

	peerMaxStreams atomic.Uint32 // the server's SETTINGS_MAX_CONCURRENT_STREAMS

	smallChunks, largeChunks sync.Pool // of *[]byte, for data waiting to be read
}

const (
	clientStreamWindow  = 4 << 20
	clientConnWindow    = 1 << 30
	clientMaxHeaderList = 1 << 20 // what we take in one header block, decoded
	clientAckTimeout    = 15 * time.Second
)

// NewClientConn starts HTTP/2 on conn, a TLS connection that negotiated
// "h2": it sends the preface, SETTINGS and the connection window, and
// starts the read loop and the watchdog. Of cfg it reads
// MaxReadFrameSize, MaxReceiveBufferPerStream and
// MaxReceiveBufferPerConnection (zero: 16 KiB, 4 MiB, 1 GiB),
// SendPingTimeout (how long the server may stay silent before a PING;
// zero: never) and PingTimeout (how long it may take to answer that PING
// or our SETTINGS; zero: 15 s). On failure conn is closed.
func NewClientConn(conn net.Conn, cfg *http.HTTP2Config) (*ClientConn, error) {
	frameSize := clamp(cfg.MaxReadFrameSize, minFrame, maxFrameLimit, minFrame)
	c := &ClientConn{
		conn:              conn,
		bw:                bufio.NewWriterSize(conn, 16<<10),
		streamWindow:      int32(clamp(cfg.MaxReceiveBufferPerStream, 1, maxWindow, clientStreamWindow)),
		connWindow:        int32(clamp(cfg.MaxReceiveBufferPerConnection, initialWindow, maxWindow, clientConnWindow)),
		streams:           make(map[uint32]*ClientStream),
		nextID:            1,
		peerFrame:         minFrame,
		rng:               newRand(),
		peerWindow:        initialWindow,
		peerMaxHeaderList: math.MaxUint32,
		outflow:           initialWindow,
		blocked:           make(map[*ClientStream]struct{}),
		done:              make(chan struct{}),
		acked:             make(chan struct{}),
		settled:           make(chan struct{}),
		pong:              make(chan [8]byte, 1),
	}
	c.inflow = int64(c.connWindow)
	c.peerMaxStreams.Store(math.MaxUint32) // unlimited until the server says (RFC 9113 §6.5.2)
	c.henc = hpack.NewEncoder(&c.hbuf)
	c.hdec = hpack.NewDecoder(initialTable, c.block.add)
	c.hdec.SetMaxStringLength(clientMaxHeaderList)
	c.fr = http2.NewFramer(c.bw, conn)
	c.fr.SetMaxReadFrameSize(uint32(frameSize))
	c.lastFrame.Store(time.Now().UnixNano())
	err := c.write(func() error {
		if _, err := c.bw.WriteString(http2.ClientPreface); err != nil {
			return err
		}
		err := c.fr.WriteSettings(
			http2.Setting{ID: http2.SettingEnablePush, Val: 0},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(c.streamWindow)},
			http2.Setting{ID: http2.SettingMaxFrameSize, Val: uint32(frameSize)},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: clientMaxHeaderList},
		)
		if err != nil {
			return err
		}
		if c.connWindow > initialWindow {
			return c.fr.WriteWindowUpdate(0, uint32(c.connWindow-initialWindow))
		}
		return nil
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("h2: %w", err)
	}
	ackTimeout := cfg.PingTimeout
	if ackTimeout <= 0 {
		ackTimeout = clientAckTimeout
	}
	c.wg.Add(2)
	go c.readLoop()
	go c.watch(ackTimeout, cfg.SendPingTimeout)
	return c, nil
}

// clamp is v within [lo, hi], or def when v is 0.
func clamp(v, lo, hi, def int) int {
	if v == 0 {
		return def
	}
	return min(max(v, lo), hi)
}

// CanTakeNewStream reports whether new streams may be opened on c: it has
// not ended, the server is not going away, and stream IDs are left.
func (c *ClientConn) CanTakeNewStream() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.openErr() == nil
}

// MaxConcurrentStreams is the server's SETTINGS_MAX_CONCURRENT_STREAMS,
// math.MaxUint32 until it sets one. A stream past it would be refused.
func (c *ClientConn) MaxConcurrentStreams() uint32 { return c.peerMaxStreams.Load() }

// Close ends the connection and every stream on it, and waits for the
// connection's goroutines.
func (c *ClientConn) Close() error {
	c.fail(errClosed)
	c.wg.Wait()
	return nil
}

// fail ends the connection with err, once: streams read what they already
// have and then err.
func (c *ClientConn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	if c.cause != nil {
		err = c.cause
	}
	c.err = err
	streams := make([]*ClientStream, 0, len(c.streams))
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

// abort ends the connection for a fault of the server's, telling it why
// with GOAWAY; but briefly: a writer stuck on a dead path holds the write
// lock, and the deadline frees it too.
func (c *ClientConn) abort(err *ConnError) {
	c.mu.Lock()
	if c.cause == nil {
		c.cause = err // a write that fails meanwhile ends c with it too
	}
	c.mu.Unlock()
	c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	c.write(func() error { return c.fr.WriteGoAway(0, err.Code, nil) })
	c.fail(err)
}
