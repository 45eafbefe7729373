package h2

import (
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

// writeData writes one DATA frame, padded by pad bytes unless pad is noPad.
func (c *ClientConn) writeData(id uint32, p []byte, pad int, end bool) error {
	return c.write(func() error { return c.dw.write(c.bw, id, p, pad, end) })
}

// writeReset sends RST_STREAM for id.
func (c *ClientConn) writeReset(id uint32, code http2.ErrCode) {
	c.write(func() error { return c.fr.WriteRSTStream(id, code) })
}
