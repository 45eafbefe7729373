// Package byteseq is the byte source of the benchmark helpers: for a
// length N, always the same N pseudo-random bytes, so that a client can
// check a transfer by its SHA-256 and a digest can be made without one.
package byteseq

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
)

// Reader returns the n bytes.
func Reader(n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{'p', 'o', 'r', 't', 'a'}), n)
}

// Write writes the n bytes to w in 256 KiB writes.
func Write(w io.Writer, n int64) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	if _, err := io.CopyBuffer(bw, Reader(n), make([]byte, 256<<10)); err != nil {
		return err
	}
	return bw.Flush()
}

// SHA256 returns the hex SHA-256 of the n bytes.
func SHA256(n int64) string {
	h := sha256.New()
	io.Copy(h, Reader(n))
	return hex.EncodeToString(h.Sum(nil))
}
