package masque

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/quic-go/quic-go/quicvarint"
)

// CapsuleDatagram is the DATAGRAM capsule's type (RFC 9297 §3.5): its
// value is an HTTP Datagram payload.
const CapsuleDatagram = 0x00

// AppendCapsule appends a capsule of type typ with value v.
func AppendCapsule(b []byte, typ uint64, v []byte) []byte {
	b = quicvarint.Append(b, typ)
	b = quicvarint.Append(b, uint64(len(v)))
	return append(b, v...)
}

// AppendDatagramCapsule appends a DATAGRAM capsule that carries one UDP
// payload, as AppendDatagram frames it.
func AppendDatagramCapsule(b, payload []byte) []byte {
	b = quicvarint.Append(b, CapsuleDatagram)
	b = quicvarint.Append(b, uint64(1+len(payload)))
	return AppendDatagram(b, payload)
}

// ErrCapsuleTooLarge is returned by CapsuleReader.Next for a DATAGRAM
// capsule longer than the reader's limit. The capsule has been skipped:
// the stream is still in step, and the caller counts it and goes on.
var ErrCapsuleTooLarge = errors.New("masque: DATAGRAM capsule over the size limit")

// CapsuleReader reads capsules from a stream. The zero value is not
// usable; see NewCapsuleReader.
type CapsuleReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

// NewCapsuleReader reads capsules from r, taking DATAGRAM capsules whose
// value is at most max bytes; longer ones are skipped with
// ErrCapsuleTooLarge.
func NewCapsuleReader(r io.Reader, max int) *CapsuleReader {
	return &CapsuleReader{r: bufio.NewReaderSize(r, 4096), max: max}
}

// NextDatagram returns the UDP payload of the next DATAGRAM capsule whose
// context ID is 0, skipping capsules of every other type and datagrams of
// other contexts, as RFC 9297 §3.2 and RFC 9298 §4 say to. The payload is
// valid until the next call. At the end of the stream it returns io.EOF;
// a stream cut inside a capsule is io.ErrUnexpectedEOF (RFC 9297 §3.3
// calls that malformed).
func (c *CapsuleReader) NextDatagram() ([]byte, error) {
	for {
		typ, err := quicvarint.Read(c.r)
		if err != nil {
			return nil, err // io.EOF between capsules is a clean end
		}
		n, err := quicvarint.Read(c.r)
		if err != nil {
			return nil, unexpected(err)
		}
		if typ != CapsuleDatagram || n > uint64(c.max)+1 {
			if _, err := io.CopyN(io.Discard, c.r, int64(n)); err != nil {
				return nil, unexpected(err)
			}
			if typ == CapsuleDatagram {
				return nil, ErrCapsuleTooLarge
			}
			continue
		}
		if cap(c.buf) < int(n) {
			c.buf = make([]byte, n, c.max+1)
		}
		b := c.buf[:n]
		if _, err := io.ReadFull(c.r, b); err != nil {
			return nil, unexpected(err)
		}
		if p, ok := ParseDatagram(b); ok {
			return p, nil
		}
	}
}

func unexpected(err error) error {
	if err == io.EOF {
		return fmt.Errorf("masque: stream ends inside a capsule: %w", io.ErrUnexpectedEOF)
	}
	return err
}
