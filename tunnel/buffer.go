package tunnel

import (
	"io"
	"sync"
	"sync/atomic"
)

const (
	smallBuf = 512       // what an idle direction holds while it waits
	largeBuf = 256 << 10 // what a busy direction borrows from the pool
)

// bufPool lends large copy buffers. It belongs to a Handler or Dialer
// (no package-level state).
type bufPool struct {
	p    sync.Pool
	lent atomic.Int64 // buffers out now
}

func (b *bufPool) get() *[]byte {
	b.lent.Add(1)
	if v, ok := b.p.Get().(*[]byte); ok {
		return v
	}
	buf := make([]byte, largeBuf)
	return &buf
}

func (b *bufPool) put(buf *[]byte) {
	b.lent.Add(-1)
	b.p.Put(buf)
}

// adaptiveCopy copies from src to dst until src ends. It reads into a small
// buffer of its own and borrows a large one from pool only while data
// arrives faster than the small one can take, so an idle connection holds
// 512 bytes rather than 256 KiB. onChunk, if set, sees each chunk size
// after it was written. (It is for a src that cannot say when it has data
// without being given a buffer; the relay's download and HTTP/2 upload
// need none while they wait.)
func adaptiveCopy(dst func([]byte) error, src io.Reader, pool *bufPool, onChunk func(int)) (int64, error) {
	small := make([]byte, smallBuf)
	var big *[]byte
	defer func() {
		if big != nil {
			pool.put(big)
		}
	}()
	var total int64
	for {
		buf := small
		if big != nil {
			buf = *big
		}
		n, err := src.Read(buf)
		if n > 0 {
			if werr := dst(buf[:n]); werr != nil {
				return total, &writeError{werr}
			}
			total += int64(n)
			if onChunk != nil {
				onChunk(n)
			}
			switch {
			case big == nil && n == len(buf):
				big = pool.get()
			case big != nil && n < smallBuf:
				pool.put(big)
				big = nil
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// writeError marks an error on the writing side of a copy.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }
