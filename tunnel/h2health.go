package tunnel

import (
	"crypto/rand"
	"errors"
	"time"
)

// health pings the server after idle without a frame from it and ends
// the connection when no answer comes within timeout: a dead path (a
// laptop's sleep, a changed network) is found and replaced.
func (c *h2Conn) health(idle, timeout time.Duration) {
	defer c.wg.Done()
	t := time.NewTimer(idle)
	defer t.Stop()
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
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.write(func() error { return c.fr.WritePing(false, data) })
		}()
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
