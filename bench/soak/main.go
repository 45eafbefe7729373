// Command soak drives many tunnels at once through a SOCKS5 proxy (porta
// client --socks) to a target it runs itself on 127.0.0.1, each moving
// a random number of bytes (MIN to MAX) both ways at once, and checks
// every byte by SHA-256: the upload at the target, the download at the
// client. Whichever side finishes first half-closes while the other goes
// on, so both orders of half-close are exercised. It prints one markdown
// table row per round and exits 1 if any byte differed or any tunnel
// failed.
//
//	soak -socks 127.0.0.1:1080 -label h2 -conns 200 -rounds 3
package main

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

func main() {
	socks := flag.String("socks", "", "SOCKS5 proxy `ADDR` to drive")
	label := flag.String("label", "", "what the table rows say the proxy is")
	conns := flag.Int("conns", 200, "tunnels at once")
	rounds := flag.Int("rounds", 3, "rounds")
	minSize := flag.Int64("min", 2<<20, "smallest transfer each way, bytes")
	maxSize := flag.Int64("max", 20<<20, "largest transfer each way, bytes")
	header := flag.Bool("header", false, "print the table's header first")
	flag.Parse()
	if *socks == "" || *minSize <= 0 || *maxSize < *minSize {
		fmt.Fprintln(os.Stderr, "soak: -socks ADDR and 0 < -min <= -max are required")
		os.Exit(2)
	}
	tg, err := newTarget()
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	if *header {
		fmt.Println("| proxy | round | tunnels | MB up | MB down | seconds | MB/s (both ways) | tunnels failed | tunnels whose bytes differed |")
		fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	}
	bad := false
	for r := 1; r <= *rounds; r++ {
		res := runRound(*socks, tg, *conns, *minSize, *maxSize)
		total := float64(res.up+res.down) / 1e6
		fmt.Printf("| %s | %d | %d | %.0f | %.0f | %.1f | %.0f | %d | %d |\n", *label, r, *conns,
			float64(res.up)/1e6, float64(res.down)/1e6, res.elapsed.Seconds(), total/res.elapsed.Seconds(), res.failed, res.differed)
		for _, e := range res.errs {
			fmt.Fprintln(os.Stderr, "soak:", e)
		}
		bad = bad || res.failed > 0 || res.differed > 0
	}
	if bad {
		os.Exit(1)
	}
}

type result struct {
	up, down         int64 // bytes that arrived whole
	elapsed          time.Duration
	failed, differed int // tunnels that failed; tunnels whose bytes differed
	errs             []error
}

func runRound(socks string, tg *target, n int, minSize, maxSize int64) result {
	var mu sync.Mutex
	var res result
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Go(func() {
			job := job{seed: rand.Uint64(), up: minSize + rand.Int64N(maxSize-minSize+1), down: minSize + rand.Int64N(maxSize-minSize+1)}
			err := job.run(socks, tg)
			mu.Lock()
			defer mu.Unlock()
			var d differ
			switch {
			case errors.As(err, &d):
				res.differed++
				res.errs = append(res.errs, err)
			case err != nil:
				res.failed++
				res.errs = append(res.errs, err)
			default:
				res.up += job.up
				res.down += job.down
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

// differ is an error for bytes that arrived other than they were sent.
type differ struct{ what string }

func (d differ) Error() string { return d.what }

// job is one tunnel: up bytes from the client, down bytes from the
// target, both made from seed.
type job struct {
	seed     uint64
	up, down int64
}

// stream is the bytes of one direction of a job.
func stream(seed uint64, dir byte, n int64) io.Reader {
	var key [32]byte
	binary.BigEndian.PutUint64(key[:], seed)
	key[8] = dir
	return io.LimitReader(rand.NewChaCha8(key), n)
}

func digest(r io.Reader) ([32]byte, int64, error) {
	h := sha256.New()
	n, err := io.CopyBuffer(h, r, make([]byte, 64<<10))
	return [32]byte(h.Sum(nil)), n, err
}

func (j job) run(socks string, tg *target) error {
	c, err := socksDial(socks, tg.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Minute))
	check := tg.expect(j)
	errc := make(chan error, 1)
	go func() {
		hdr := make([]byte, 24)
		binary.BigEndian.PutUint64(hdr, j.seed)
		binary.BigEndian.PutUint64(hdr[8:], uint64(j.up))
		binary.BigEndian.PutUint64(hdr[16:], uint64(j.down))
		_, err := c.Write(hdr)
		if err == nil {
			_, err = io.CopyBuffer(c, stream(j.seed, 'u', j.up), make([]byte, 64<<10))
		}
		if err == nil {
			err = c.CloseWrite()
		}
		errc <- err
	}()
	want, _, _ := digest(stream(j.seed, 'd', j.down))
	got, n, err := digest(c)
	if werr := <-errc; werr != nil && err == nil {
		err = fmt.Errorf("upload: %w", werr)
	}
	if err != nil {
		return fmt.Errorf("tunnel %x: %w", j.seed, err)
	}
	if n != j.down || got != want {
		return differ{fmt.Sprintf("tunnel %x: download of %d bytes arrived as %d bytes, digest match %v", j.seed, j.down, n, got == want)}
	}
	return check()
}

// socksDial opens a SOCKS5 CONNECT to target (an IP address and port).
func socksDial(proxy, target string) (*net.TCPConn, error) {
	ap, err := netip.ParseAddrPort(target)
	if err != nil {
		return nil, err
	}
	nc, err := net.Dial("tcp", proxy)
	if err != nil {
		return nil, err
	}
	c := nc.(*net.TCPConn)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	req := []byte{5, 1, 0, 5, 1, 0, 1}
	req = append(req, ap.Addr().AsSlice()...)
	req = binary.BigEndian.AppendUint16(req, ap.Port())
	reply := make([]byte, 12)
	if _, err := c.Write(req); err == nil {
		_, err = io.ReadFull(c, reply)
	}
	if err != nil || reply[1] != 0 || reply[3] != 0 {
		c.Close()
		return nil, fmt.Errorf("SOCKS5 CONNECT to %s: reply % x, %v", target, reply, err)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// target accepts the tunnels' connections: each sends its job's header,
// then the target sends the download while it checks the upload.
type target struct {
	addr string
	mu   sync.Mutex
	jobs map[uint64]chan error // by seed: the upload's verdict
}

func newTarget() (*target, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	tg := &target{addr: ln.Addr().String(), jobs: map[uint64]chan error{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go tg.serve(c.(*net.TCPConn))
		}
	}()
	return tg, nil
}

// expect registers j before its connection is made and returns what
// waits for the target's verdict on its upload.
func (tg *target) expect(j job) func() error {
	ch := make(chan error, 1)
	tg.mu.Lock()
	tg.jobs[j.seed] = ch
	tg.mu.Unlock()
	return func() error {
		select {
		case err := <-ch:
			return err
		case <-time.After(2 * time.Minute):
			return fmt.Errorf("tunnel %x: the target never finished the upload", j.seed)
		}
	}
}

func (tg *target) serve(c *net.TCPConn) {
	defer c.Close()
	hdr := make([]byte, 24)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return
	}
	j := job{seed: binary.BigEndian.Uint64(hdr), up: int64(binary.BigEndian.Uint64(hdr[8:])), down: int64(binary.BigEndian.Uint64(hdr[16:]))}
	tg.mu.Lock()
	verdict := tg.jobs[j.seed]
	delete(tg.jobs, j.seed)
	tg.mu.Unlock()
	if verdict == nil {
		return
	}
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		if _, err := io.CopyBuffer(c, stream(j.seed, 'd', j.down), make([]byte, 64<<10)); err == nil {
			c.CloseWrite()
		}
	}()
	defer func() { <-sent }() // before the deferred Close
	want, _, _ := digest(stream(j.seed, 'u', j.up))
	got, n, err := digest(c)
	switch {
	case err != nil:
		verdict <- fmt.Errorf("tunnel %x: the target's read: %w", j.seed, err)
	case n != j.up || got != want:
		verdict <- differ{fmt.Sprintf("tunnel %x: upload of %d bytes arrived as %d bytes, digest match %v", j.seed, j.up, n, got == want)}
	default:
		verdict <- nil
	}
}
