package h2

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// frameWriter writes one server connection's frames. Handlers write their
// HEADERS and DATA under mu, directly; the read loop never waits for mu:
// the frames it must send (SETTINGS and PING acks, WINDOW_UPDATE,
// RST_STREAM, GOAWAY) go into a queue that whoever holds mu writes
// before letting go, so a writer stuck on a peer that does not read
// cannot stop the connection from reading. The queue is bounded, as
// net/http's is (a peer that floods PINGs and never reads is cut off).
//
// The writer that finds no other writer waiting flushes, so frames
// written together share a TLS record and a system call.
type frameWriter struct {
	fail func(error) // ends the connection after a write error

	mu       sync.Mutex
	bw       *bufio.Writer
	fr       *http2.Framer // its write half; the read loop reads with it
	henc     *hpack.Encoder
	hbuf     bytes.Buffer
	dw       dataWriter
	keys     []string // encodeHeaders' scratch
	err      error    // sticky, under mu
	yielding bool     // a writer let go of mu to flush once others wrote: it will
	// tableSize is the client's SETTINGS_HEADER_TABLE_SIZE not yet given
	// to henc (-1: none); the encoder takes it at its next block.
	tableSize atomic.Int64
	waiting   atomic.Int32 // writers waiting for mu

	qmu       sync.Mutex
	ackQueued bool // a SETTINGS ack waits in queue: another is not added
	queue     []control
	spare     []control // the queue's other slice, swapped in by drain
	queued    atomic.Int32
}

// maxQueuedControl bounds the control frames waiting to be written, as
// net/http's maxQueuedControlFrames does.
const maxQueuedControl = 10000

var errControlFlood = errors.New("h2: too many control frames queued: the peer is not reading")

// control is a frame the read loop (or a handler's body read) asks to be
// written: its kind and fields.
type control struct {
	kind http2.FrameType
	id   uint32 // stream, or GOAWAY's last stream
	val  uint32 // WINDOW_UPDATE's increment, RST_STREAM's or GOAWAY's code
	ack  bool   // SETTINGS or PING ack
	data [8]byte
	sets []http2.Setting // SETTINGS
}

func newFrameWriter(out io.Writer, fail func(error)) *frameWriter {
	w := &frameWriter{fail: fail, bw: bufio.NewWriterSize(out, 16<<10)}
	w.henc = hpack.NewEncoder(&w.hbuf)
	w.tableSize.Store(-1)
	return w
}

// lock takes mu for a writer that will write frames itself.
func (w *frameWriter) lock() error {
	w.waiting.Add(1)
	w.mu.Lock()
	w.waiting.Add(-1)
	return w.err
}

// unlock writes what the queue holds, flushes unless a writer is
// waiting to add its frames, and lets go of mu. It takes mu back for a
// control frame queued meanwhile that nobody else would write.
//
// Before it flushes it lets the goroutines that are ready run first
// (runtime.Gosched, without mu), so that the answers of handlers that
// finish in the same moment share one TLS record and one write: under
// load a DoH server writes far fewer records than answers. Writers that
// come meanwhile leave the flush to it.
func (w *frameWriter) unlock() {
	for {
		w.drain()
		if w.err == nil && w.waiting.Load() == 0 && w.bw.Buffered() > 0 && !w.yielding {
			w.yielding = true
			w.mu.Unlock()
			runtime.Gosched()
			w.mu.Lock()
			w.yielding = false
			w.drain()
			if w.err == nil && w.waiting.Load() == 0 {
				w.check(w.bw.Flush())
			}
		}
		w.mu.Unlock()
		if w.queued.Load() == 0 || !w.mu.TryLock() {
			return
		}
	}
}

// check records a write error; the first ends the connection.
func (w *frameWriter) check(err error) error {
	if err != nil && w.err == nil {
		w.err = err
		w.fail(err) // closes the connection: writers stuck on it return
	}
	return err
}

// control queues f and writes it now if nobody holds mu. A SETTINGS ack
// while one waits is dropped: SETTINGS that arrive while the writer is
// held up are acknowledged together, as net/http's server does.
func (w *frameWriter) control(f control) error {
	w.qmu.Lock()
	isAck := f.kind == http2.FrameSettings && f.ack
	if isAck && w.ackQueued {
		w.qmu.Unlock()
		return nil
	}
	if len(w.queue) >= maxQueuedControl {
		w.qmu.Unlock()
		return errControlFlood
	}
	w.queue = append(w.queue, f)
	w.ackQueued = w.ackQueued || isAck
	w.queued.Add(1)
	w.qmu.Unlock()
	if w.mu.TryLock() {
		w.unlock()
	}
	return nil
}

// drain writes the queued control frames; mu is held.
func (w *frameWriter) drain() {
	if w.queued.Load() == 0 {
		return
	}
	w.qmu.Lock()
	q := w.queue
	w.queue, w.spare = w.spare[:0], nil
	w.ackQueued = false
	w.queued.Store(0)
	w.qmu.Unlock()
	for i := range q {
		if w.err == nil {
			w.check(w.writeControl(&q[i]))
		}
		q[i].sets = nil
	}
	w.qmu.Lock()
	if w.spare == nil {
		w.spare = q[:0]
	}
	w.qmu.Unlock()
}

func (w *frameWriter) writeControl(f *control) error {
	switch f.kind {
	case http2.FrameSettings:
		if f.ack {
			return w.fr.WriteSettingsAck()
		}
		return w.fr.WriteSettings(f.sets...)
	case http2.FramePing:
		return w.fr.WritePing(f.ack, f.data)
	case http2.FrameWindowUpdate:
		return w.fr.WriteWindowUpdate(f.id, f.val)
	case http2.FrameRSTStream:
		return w.fr.WriteRSTStream(f.id, http2.ErrCode(f.val))
	case http2.FrameGoAway:
		return w.fr.WriteGoAway(f.id, http2.ErrCode(f.val), nil)
	}
	return nil
}

// writeHeaderBlock writes the block in hbuf as HEADERS and as many
// CONTINUATION frames as maxFrame needs; mu is held.
func (w *frameWriter) writeHeaderBlock(id uint32, end bool, maxFrame int) error {
	block := w.hbuf.Bytes()
	first := block[:min(len(block), maxFrame)]
	block = block[len(first):]
	err := w.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID: id, BlockFragment: first, EndStream: end, EndHeaders: len(block) == 0,
	})
	for err == nil && len(block) > 0 {
		frag := block[:min(len(block), maxFrame)]
		block = block[len(frag):]
		err = w.fr.WriteContinuation(id, len(block) == 0, frag)
	}
	return w.check(err)
}
