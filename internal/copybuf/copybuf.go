// Package copybuf copies a stream through a small buffer of its own that
// grows, with a large one from a shared Pool, while data comes faster than
// the small one can take, and shrinks back when it slows: an idle copy
// holds Small bytes, a bulk one moves up to Large bytes per read and write.
// The tunnel's relay and the client's proxies copy with it.
package copybuf

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

const (
	Small = 512       // what a copy holds while it waits
	Large = 256 << 10 // what a busy copy borrows from the Pool
)

// Pool lends Large buffers. Its zero value is ready to use; it belongs to
// whatever owns the copies (no package-level state).
type Pool struct {
	p    sync.Pool
	lent atomic.Int64
}

// Get lends a buffer of Large bytes.
func (p *Pool) Get() *[]byte {
	p.lent.Add(1)
	if v, ok := p.p.Get().(*[]byte); ok {
		return v
	}
	b := make([]byte, Large)
	return &b
}

// Put takes back a buffer from Get.
func (p *Pool) Put(b *[]byte) {
	p.lent.Add(-1)
	p.p.Put(b)
}

// Lent is how many buffers are out now.
func (p *Pool) Lent() int64 { return p.lent.Load() }

// Chunker is a reader that holds what it has read in buffers of its own
// (the tunnel's HTTP/2 streams): it passes them to dst as they are rather
// than have Copy copy them into another buffer first.
type Chunker interface {
	// CopyChunks calls dst with each chunk of data, in order, until EOF
	// (then nil) or an error, like Copy. It returns errors.ErrUnsupported,
	// having read nothing, when it cannot; Copy then reads as usual.
	CopyChunks(dst func([]byte) error) (int64, error)
}

// To is w as Copy's dst: a short write is io.ErrShortWrite.
func To(w io.Writer) func([]byte) error {
	return func(p []byte) error {
		n, err := w.Write(p)
		if err == nil && n < len(p) {
			err = io.ErrShortWrite
		}
		return err
	}
}

// Copy copies src to dst until src's EOF (then nil) or an error. It reads
// into a Small buffer, borrows a Large one from pool after a read that
// fills the small one, and gives it back after a read of less than Small.
// onChunk, if set, sees the size of each chunk after dst took it.
//
// A src that is a Chunker copies from its own buffers instead, unless it
// answers errors.ErrUnsupported.
func Copy(dst func([]byte) error, src io.Reader, pool *Pool, onChunk func(int)) (int64, error) {
	if c, ok := src.(Chunker); ok {
		n, err := c.CopyChunks(func(p []byte) error {
			if err := dst(p); err != nil {
				return err
			}
			if onChunk != nil {
				onChunk(len(p))
			}
			return nil
		})
		if !errors.Is(err, errors.ErrUnsupported) {
			return n, err
		}
	}
	small := make([]byte, Small)
	var big *[]byte
	defer func() {
		if big != nil {
			pool.Put(big)
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
				return total, werr
			}
			total += int64(n)
			if onChunk != nil {
				onChunk(n)
			}
			switch {
			case big == nil && n == len(buf):
				big = pool.Get()
			case big != nil && n < Small:
				pool.Put(big)
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
