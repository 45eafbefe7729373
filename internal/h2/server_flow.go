package h2

// inflow is a receive window: what the peer may still send (avail), and
// what was consumed but not yet given back (unsent). Updates go out when
// at least 4 KiB are owed or the update would double the window, as
// net/http's do, so that a client sees the same WINDOW_UPDATEs from
// either server.
type inflow struct {
	avail  int32
	unsent int32
}

const inflowMinRefresh = 4 << 10

// add gives n consumed bytes back and returns the increment to send now,
// or 0 to wait for more.
func (f *inflow) add(n int) int32 {
	unsent := int64(f.unsent) + int64(n)
	if unsent+int64(f.avail) > maxWindow { // a bug: never more than was taken
		unsent = maxWindow - int64(f.avail)
	}
	f.unsent = int32(unsent)
	if f.unsent < inflowMinRefresh && f.unsent < f.avail {
		return 0
	}
	f.avail += f.unsent
	f.unsent = 0
	return int32(unsent)
}

// take takes n bytes from both windows, or reports that either is short.
func takeInflows(a, b *inflow, n uint32) bool {
	if n > uint32(a.avail) || n > uint32(b.avail) {
		return false
	}
	a.avail -= int32(n)
	b.avail -= int32(n)
	return true
}

func (f *inflow) take(n uint32) bool {
	if n > uint32(f.avail) {
		return false
	}
	f.avail -= int32(n)
	return true
}

// addWindow adds n (which may be negative) to a send window and reports
// whether the sum stays within 2^31-1 (RFC 9113 §6.9.1).
func addWindow(w *int64, n int64) bool {
	if *w+n > maxWindow {
		return false
	}
	*w += n
	return true
}
