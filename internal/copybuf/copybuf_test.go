package copybuf

import (
	"errors"
	"io"
	"slices"
	"testing"
)

// scriptedReader reads as its script says: a negative entry fills the
// caller's buffer, a positive one returns that many bytes; then EOF.
type scriptedReader struct{ script []int }

func (r *scriptedReader) Read(p []byte) (int, error) {
	if len(r.script) == 0 {
		return 0, io.EOF
	}
	n := r.script[0]
	r.script = r.script[1:]
	if n < 0 || n > len(p) {
		n = len(p)
	}
	return n, nil
}

// A bulk transfer moves to the large buffer after one full read, and back
// once reads come in small; the buffer goes back to the pool at the end.
func TestCopyBufferFollowsTheData(t *testing.T) {
	var pool Pool
	var writes []int
	dst := func(p []byte) error { writes = append(writes, len(p)); return nil }
	src := &scriptedReader{script: []int{-1, -1, -1, -1, 100, 100, -1, -1}}
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
	_, err := Copy(dst, &scriptedReader{script: []int{-1, -1, -1, -1}}, &pool, nil)
	if !errors.Is(err, boom) || calls != 3 || pool.Lent() != 0 {
		t.Fatalf("err %v after %d writes, %d lent", err, calls, pool.Lent())
	}
}
