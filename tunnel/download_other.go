//go:build !unix

package tunnel

// copyDown copies the target to the client until the target is done.
func (rl *relay) copyDown() (idle bool, err error) {
	_, err = adaptiveCopy(rl.leg.Write, rl.target, &rl.h.pool, func(n int) {
		rl.us.c.bytesDown.Add(uint64(n))
		rl.touch()
	})
	return false, err
}
