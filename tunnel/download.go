package tunnel

// download moves the target's data to the client, on a goroutine of its
// own, until the target has nothing more to read for now or is done. Where
// the Handler's watcher waits for idle targets (watchIdle), the download
// then asks it to start the next download once there is more, and the
// goroutine ends; elsewhere the download waits for the target itself.
func (rl *relay) download() {
	idle, err := rl.copyDown()
	if idle {
		if err = rl.h.watch.arm(rl); err == nil {
			return
		}
	}
	rl.downEnded(err)
}

// downEnded ends the download: the target is done sending (err == nil),
// which the client is told, or failed, which resets both sides.
func (rl *relay) downEnded(err error) {
	if err != nil {
		rl.abort(err)
	} else if !rl.leg.CloseWrite() {
		rl.stopping.Store(true)
		rl.leg.StopRead()
	}
	rl.downErr = err
	rl.downDone.Done()
}
