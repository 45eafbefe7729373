package h2

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/net/http2"
)

// write runs f, which writes frames, under the write lock, and flushes
// unless another writer is waiting to add its frames. An error ends the
// connection, unless it is an errNoWrite.
func (c *ClientConn) write(f func() error) error {
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
func (c *ClientConn) writeData(id uint32, p []byte, end bool) error {
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

// writeReset sends RST_STREAM for id.
func (c *ClientConn) writeReset(id uint32, code http2.ErrCode) {
	c.write(func() error { return c.fr.WriteRSTStream(id, code) })
}
