package main

import (
	"fmt"
	"slices"
	"time"
)

// first times samples first answers, each on a new flow: a new socket, or
// a new SOCKS5 association (whose setup, on loopback, is not timed), so
// that a tunneled sample pays for opening its flow to the target.
func first(socks, target string, samples int) error {
	var times []time.Duration
	for i := range samples {
		f, err := openFlow(socks, target)
		if err != nil {
			return err
		}
		msg := fmt.Appendf(nil, "first answer %d", i)
		start := time.Now()
		if err := f.send(msg); err != nil {
			f.close()
			return err
		}
		p, err := f.recv(start.Add(5 * time.Second))
		took := time.Since(start)
		f.close()
		if err != nil {
			return fmt.Errorf("sample %d: %w", i, err)
		}
		if string(p) != string(msg) {
			return fmt.Errorf("sample %d: answered %q", i, p)
		}
		times = append(times, took)
	}
	slices.Sort(times)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	fmt.Printf("median_ms=%.2f max_ms=%.2f\n", ms(times[len(times)/2]), ms(times[len(times)-1]))
	return nil
}
