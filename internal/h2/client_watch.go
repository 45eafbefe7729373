package h2

import (
	"crypto/rand"
	"errors"
	"time"

	"golang.org/x/net/http2"
)

// watch ends the connection when the server does not acknowledge our
// SETTINGS within timeout (RFC 9113 §6.5.3); then, if idle is set, pings
// the server after idle without a frame from it and ends the connection
// when no answer comes within timeout: a dead path (a laptop's sleep, a
// changed network) is found and replaced.
func (c *ClientConn) watch(timeout, idle time.Duration) {
	defer c.wg.Done()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.acked:
	case <-t.C:
		c.abort(connErr(http2.ErrCodeSettingsTimeout, "the server did not acknowledge the client's SETTINGS within %v", timeout))
		return
	case <-c.done:
		return
	}
	if idle <= 0 {
		return
	}
	t.Reset(idle)
	for {
		select {
		case <-t.C:
		case <-c.done:
			return
		}
		if since := time.Duration(time.Now().UnixNano() - c.lastFrame.Load()); since < idle {
			t.Reset(idle - since)
			continue
		}
		var data [8]byte
		rand.Read(data[:])
		// Not on this goroutine: a write stuck on a dead path must not
		// stop the timeout that finds it.
		c.wg.Go(func() {
			c.write(func() error { return c.fr.WritePing(false, data) })
		})
		t.Reset(timeout)
	wait:
		for {
			select {
			case got := <-c.pong:
				if got == data {
					break wait
				}
			case <-t.C:
				c.fail(errors.New("h2: server did not answer a PING"))
				return
			case <-c.done:
				return
			}
		}
		t.Reset(idle)
	}
}
