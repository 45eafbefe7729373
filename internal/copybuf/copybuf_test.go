package copybuf

import (
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/porta443/porta/internal/relay/relaytest"
)

// A bulk transfer moves to the large buffer after one full read, and back
// once reads come in small; the buffer goes back to the pool at the end.
func TestCopyBufferFollowsTheData(t *testing.T) {
	var pool Pool
	var writes []int
	dst := func(p []byte) error { writes = append(writes, len(p)); return nil }
	src := &relaytest.Script{-1, -1, -1, -1, 100, 100, -1, -1}
	var chunks int
	total, err := Copy(dst, src, &pool, func(int) { chunks++ })
	if err != nil {
		t.Fatal(err)
	}
	want := []int{Small, Large, Large, Large, 100, 100, Small, Large}
	if !slices.Equal(writes, want) {
		t.Fatalf("writes %v, want %v", writes, want)
	}
	sum := 0
	for _, n := range want {
		sum += n
	}
	if total != int64(sum) || chunks != len(want) {
		t.Fatalf("total %d, %d chunks", total, chunks)
	}
	if n := pool.Lent(); n != 0 {
		t.Fatalf("%d buffers still lent after Copy", n)
	}
}

// A failed write ends the copy with that error, and the buffer goes back.
func TestCopyWriteError(t *testing.T) {
	var pool Pool
	boom := errors.New("boom")
	calls := 0
	dst := func(p []byte) error {
		if calls++; calls == 3 {
			return boom
		}
		return nil
	}
	_, err := Copy(dst, &relaytest.Script{-1, -1, -1, -1}, &pool, nil)
	if !errors.Is(err, boom) || calls != 3 || pool.Lent() != 0 {
		t.Fatalf("err %v after %d writes, %d lent", err, calls, pool.Lent())
	}
}

// chunkSource is a Chunker holding chunks of its own; unsupported makes it
// decline, and then it reads as a plain reader.
type chunkSource struct {
	chunks      [][]byte
	unsupported bool
	reads       int
}

func (c *chunkSource) CopyChunks(dst func([]byte) error) (int64, error) {
	if c.unsupported {
		return 0, errors.ErrUnsupported
	}
	var n int64
	for _, p := range c.chunks {
		if err := dst(p); err != nil {
			return n, err
		}
		n += int64(len(p))
	}
	return n, nil
}

func (c *chunkSource) Read(p []byte) (int, error) {
	if c.reads++; c.reads > 1 {
		return 0, io.EOF
	}
	return copy(p, "read"), nil
}

// A Chunker's chunks reach dst as they are, each seen by onChunk, with no
// buffer taken from the pool; one that declines is read as usual.
func TestCopyTakesChunks(t *testing.T) {
	var pool Pool
	first := []byte("chunk one")
	src := &chunkSource{chunks: [][]byte{first, []byte("two")}}
	var got [][]byte
	var seen []int
	n, err := Copy(func(p []byte) error { got = append(got, p); return nil }, src, &pool, func(k int) { seen = append(seen, k) })
	if err != nil || n != 12 || len(got) != 2 || &got[0][0] != &first[0] || !slices.Equal(seen, []int{9, 3}) {
		t.Fatalf("n %d, err %v, chunks %q (same memory: %v), seen %v", n, err, got, len(got) > 0 && &got[0][0] == &first[0], seen)
	}
	if src.reads != 0 || pool.Lent() != 0 {
		t.Fatalf("%d reads, %d lent", src.reads, pool.Lent())
	}

	src = &chunkSource{unsupported: true}
	var out []byte
	n, err = Copy(func(p []byte) error { out = append(out, p...); return nil }, src, &pool, nil)
	if err != nil || n != 4 || string(out) != "read" {
		t.Fatalf("declined: n %d, err %v, got %q", n, err, out)
	}
}
