//go:build unix

package tunnel

import (
	"os"
	"syscall"

	"github.com/porta443/porta/internal/copybuf"
)

// copyDown copies the target to the client: rc.Read calls readDown
// whenever the target may be readable, and a buffer is taken only for a
// read that finds data; the write to the client happens outside rc.Read,
// whose hold on the target would make a Close wait for it. copyDown
// reports idle when the target has nothing more for now and watchIdle
// says to stop there.
func (rl *relay) copyDown() (idle bool, err error) {
	read := rl.readDown
	for {
		rl.pumpBuf, rl.pumpIdle, rl.pumpErr = nil, false, nil
		if err := rl.rc.Read(read); err != nil {
			return false, err
		}
		buf := rl.pumpBuf
		if buf == nil { // EOF, a failure or idle
			return rl.pumpIdle, rl.pumpErr
		}
		n := rl.pumpN
		err := rl.leg.Write((*buf)[:n])
		rl.h.pool.Put(buf)
		if err != nil {
			return false, err
		}
		rl.us.c.bytesDown.Add(uint64(n))
		rl.touch()
	}
}

// downChunk is the most the download reads at once. With an HTTP/2 DATA
// frame's 9-byte header it makes 256 KiB, 16 whole TLS records; a full
// buffer would leave a 9-byte record, written on its own, after each
// frame. (For clients that take frames this large, as porta's does.)
const downChunk = copybuf.Large - 9

// readDown reads what the target has into a buffer from the pool
// (rl.pumpBuf, rl.pumpN). It returns false to wait for the target, true
// once it read data, the target is done (rl.pumpErr says why, if it
// failed), or it has nothing to read and watchIdle is set.
func (rl *relay) readDown(fd uintptr) bool {
	for {
		buf := rl.h.pool.Get()
		n, err := syscall.Read(int(fd), (*buf)[:downChunk])
		if n > 0 {
			rl.pumpBuf, rl.pumpN = buf, n
			return true
		}
		rl.h.pool.Put(buf)
		switch err {
		case nil: // EOF
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			rl.pumpIdle = watchIdle
			return watchIdle
		}
		rl.pumpErr = os.NewSyscallError("read", err)
		return true
	}
}
