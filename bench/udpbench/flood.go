package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// lostAfter is how long a datagram may go unanswered before flood counts
// it lost and sends another in its place.
const lostAfter = 250 * time.Millisecond

// flood keeps window datagrams in flight for dur and prints what came
// back. Each datagram carries its sequence number, so that echoes lost,
// duplicated or out of order are counted.
func flood(socks, target string, size, window int, dur time.Duration) error {
	if size < 8 {
		return errors.New("-size must be at least 8")
	}
	f, err := openFlow(socks, target)
	if err != nil {
		return err
	}
	defer f.close()
	var (
		mu       sync.Mutex
		inFlight = map[uint64]time.Time{}
		slots    = make(chan struct{}, window)
		got      = map[uint64]bool{}
		echoes   int
		dups     int
		late     int // arrived after a higher sequence number
		maxSeen  uint64
	)
	for range window {
		slots <- struct{}{}
	}
	start := time.Now()
	end := start.Add(dur)
	done := make(chan struct{})
	go func() { // the answers
		defer close(done)
		for {
			p, err := f.recv(end.Add(lostAfter))
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					return
				}
				continue
			}
			if len(p) < 8 {
				continue
			}
			seq := binary.BigEndian.Uint64(p)
			mu.Lock()
			switch {
			case got[seq]:
				dups++
			default:
				got[seq] = true
				echoes++
				if seq < maxSeen {
					late++
				}
				maxSeen = max(maxSeen, seq)
				if _, ok := inFlight[seq]; ok {
					delete(inFlight, seq)
					slots <- struct{}{}
				}
			}
			mu.Unlock()
		}
	}()
	sweep := time.NewTicker(lostAfter / 5)
	defer sweep.Stop()
	payload := make([]byte, size)
	var seq uint64
	for time.Now().Before(end) {
		select {
		case <-slots:
		case now := <-sweep.C:
			mu.Lock()
			for s, at := range inFlight {
				if now.Sub(at) > lostAfter {
					delete(inFlight, s)
					slots <- struct{}{}
				}
			}
			mu.Unlock()
			continue
		}
		seq++
		binary.BigEndian.PutUint64(payload, seq)
		mu.Lock()
		inFlight[seq] = time.Now()
		mu.Unlock()
		if err := f.send(payload); err != nil {
			return err
		}
	}
	<-done
	elapsed := time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	lost := int(seq) - echoes // the sweep's count only made room in the window
	pps := float64(echoes) / elapsed.Seconds()
	fmt.Printf("sent=%d echoes=%d lost=%d dup=%d reordered=%d pps=%.0f mbytes_per_s=%.1f\n",
		seq, echoes, lost, dups, late, pps, pps*float64(size)/1e6)
	return nil
}
