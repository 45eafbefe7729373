//go:build !unix

package tunnel

import "github.com/porta443/porta/internal/copybuf"

// copyDown copies the target to the client until the target is done.
func (rl *relay) copyDown() (idle bool, err error) {
	_, err = copybuf.Copy(rl.leg.Write, rl.target, &rl.h.pool, func(n int) {
		rl.us.c.bytesDown.Add(uint64(n))
		rl.touch()
	})
	return false, err
}
