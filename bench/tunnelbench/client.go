package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/porta443/porta/tunnel"
)

// clientFlags are how every measuring subcommand reaches the target.
type clientFlags struct {
	via    *string
	server *string
	pin    *string
	ca     *string
	user   *string
	target *string
}

func addClientFlags(fs *flag.FlagSet) *clientFlags {
	return &clientFlags{
		via:    fs.String("via", "h2", "h2, h2std (HTTP/2 on net/http's client) or h3 (the tunnel), tls (one TLS hop, e.g. stunnel), direct (plain TCP)"),
		server: fs.String("server", "", "tunnel server or TLS hop address"),
		pin:    fs.String("pin", "", "server key pin, sha256//BASE64"),
		ca:     fs.String("ca", "", "CA file for -via tls"),
		user:   fs.String("user", "bench:bench-token", "NAME:TOKEN"),
		target: fs.String("target", "", "source address, as the tunnel server reaches it"),
	}
}

// dialer returns a function that opens one connection to the source.
func (f *clientFlags) dialer() (func(ctx context.Context) (net.Conn, error), func(), error) {
	switch *f.via {
	case "h2", "h2std", "h3":
		d, err := tunnel.NewDialer(tunnel.DialerConfig{
			Servers:   []string{"https://" + *f.user + "@" + *f.server},
			Pin:       *f.pin,
			Transport: strings.TrimSuffix(*f.via, "std"),
			StdHTTP2:  *f.via == "h2std",
		})
		if err != nil {
			return nil, nil, err
		}
		return func(ctx context.Context) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", *f.target)
		}, func() { d.Close() }, nil
	case "tls":
		pem, err := os.ReadFile(*f.ca)
		if err != nil {
			return nil, nil, err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		conf := &tls.Config{RootCAs: pool, ServerName: "localhost"}
		return func(ctx context.Context) (net.Conn, error) {
			return (&tls.Dialer{Config: conf}).DialContext(ctx, "tcp", *f.server)
		}, func() {}, nil
	case "direct":
		return func(ctx context.Context) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", *f.server)
		}, func() {}, nil
	}
	return nil, nil, fmt.Errorf("-via %q: want h2, h2std, h3, tls or direct", *f.via)
}

// cmdGet downloads -bytes from the source, checks the digest and prints
// "MB/s=... bytes=... cpu_s=...", cpu_s being the CPU time (user and
// system) the process spent on the download, SHA-256 included.
func cmdGet(args []string) error {
	fs := flag.NewFlagSet("get", flag.ExitOnError)
	cf := addClientFlags(fs)
	n := fs.Int64("bytes", 1<<30, "how much to download")
	want := fs.String("want", "", "expected SHA-256 (hex)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile here")
	fs.Parse(args)
	stop, err := startCPUProfile(*cpuprofile)
	if err != nil {
		return err
	}
	defer stop()
	dial, done, err := cf.dialer()
	if err != nil {
		return err
	}
	defer done()
	start, cpu0 := time.Now(), cpuTime()
	c, err := dial(context.Background())
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(c, "%d\n", *n)
	h := sha256.New()
	got, err := io.CopyBuffer(h, c, make([]byte, 256<<10))
	took, cpu := time.Since(start), cpuTime()-cpu0
	if err != nil {
		return err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if got != *n || (*want != "" && sum != *want) {
		return fmt.Errorf("got %d bytes with SHA-256 %s, want %d with %s", got, sum, *n, *want)
	}
	fmt.Printf("MB/s=%.0f bytes=%d seconds=%.2f cpu_s=%.3f sha256=ok\n", float64(got)/took.Seconds()/1e6, got, took.Seconds(), cpu.Seconds())
	return nil
}

// cmdTTFB measures, -n times, a new connection's first exchange: dial,
// send "ping", wait for "pong". For the tunnel, the Dialer is warmed up
// first (a warm tunnel); "direct" also reports the exchange on a
// connection that is already open, i.e. one bare round trip.
func cmdTTFB(args []string) error {
	fs := flag.NewFlagSet("ttfb", flag.ExitOnError)
	cf := addClientFlags(fs)
	n := fs.Int("n", 20, "samples")
	fs.Parse(args)
	dial, done, err := cf.dialer()
	if err != nil {
		return err
	}
	defer done()
	ping := func(c net.Conn, br *bufio.Reader) error {
		if _, err := io.WriteString(c, "ping\n"); err != nil {
			return err
		}
		line, err := br.ReadString('\n')
		if err == nil && line != "pong\n" {
			err = errors.New("bad answer " + line)
		}
		return err
	}
	exchange := func() (time.Duration, error) {
		start := time.Now()
		c, err := dial(context.Background())
		if err != nil {
			return 0, err
		}
		defer c.Close()
		err = ping(c, bufio.NewReader(c))
		return time.Since(start), err
	}
	if _, err := exchange(); err != nil { // warm-up
		return err
	}
	var fresh []time.Duration
	for range *n {
		d, err := exchange()
		if err != nil {
			return err
		}
		fresh = append(fresh, d)
	}
	out := fmt.Sprintf("new_ms=%.1f", ms(median(fresh)))
	if *cf.via == "direct" {
		c, err := dial(context.Background())
		if err != nil {
			return err
		}
		defer c.Close()
		br := bufio.NewReader(c)
		var open []time.Duration
		for range *n {
			start := time.Now()
			if err := ping(c, br); err != nil {
				return err
			}
			open = append(open, time.Since(start))
		}
		out += fmt.Sprintf(" open_ms=%.1f", ms(median(open)))
	}
	fmt.Println(out)
	return nil
}

// cpuTime is the CPU time, user and system, the process has spent.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(ds []time.Duration) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// cmdIdle opens -n tunneled connections, makes each exchange one
// ping/pong so the server has set it up, leaves them idle, and prints the
// server's memory growth per connection from its stats address.
func cmdIdle(args []string) error {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	cf := addClientFlags(fs)
	n := fs.Int("n", 2000, "connections")
	stats := fs.String("stats", "", "server stats address (tunnelbench server)")
	pid := fs.Int("pid", 0, "else the server's process id: RSS from /proc only")
	heapProfile := fs.String("heapprofile", "", "save the server's heap profile (from -stats) here while the tunnels are open")
	fs.Parse(args)
	if *stats == "" && *pid == 0 {
		return errors.New("need -stats or -pid")
	}
	dial, done, err := cf.dialer()
	if err != nil {
		return err
	}
	defer done()
	// Warm the tunnel so the connection itself is not counted.
	if c, err := dial(context.Background()); err == nil {
		io.WriteString(c, "ping\n")
		bufio.NewReader(c).ReadString('\n')
		c.Close()
	}
	time.Sleep(200 * time.Millisecond)
	before, err := readStats(*stats, *pid)
	if err != nil {
		return err
	}
	var conns []net.Conn
	for range *n {
		c, err := dial(context.Background())
		if err != nil {
			return err
		}
		if _, err := io.WriteString(c, "ping\n"); err != nil {
			return err
		}
		if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "pong\n" {
			return fmt.Errorf("ping: %q %v", line, err)
		}
		conns = append(conns, c)
	}
	time.Sleep(200 * time.Millisecond)
	after, err := readStats(*stats, *pid)
	if err != nil {
		return err
	}
	if *heapProfile != "" && *stats != "" {
		if err := saveHeapProfile(*stats, *heapProfile); err != nil {
			return err
		}
	}
	for _, c := range conns {
		c.Close()
	}
	if *stats != "" && after.Tunnels-before.Tunnels != *n {
		return fmt.Errorf("server reports %d tunnels, want %d", after.Tunnels-before.Tunnels, *n)
	}
	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(*n) / 1024 }
	fmt.Printf("heap+stack_KiB=%.1f heap_KiB=%.1f stack_KiB=%.1f rss_KiB=%.1f goroutines=%.2f\n",
		per(after.HeapInuse+after.StackInuse, before.HeapInuse+before.StackInuse),
		per(after.HeapInuse, before.HeapInuse), per(after.StackInuse, before.StackInuse),
		per(after.RSS, before.RSS), float64(after.Goroutines-before.Goroutines)/float64(*n))
	return nil
}

func readStats(addr string, pid int) (Mem, error) {
	var m Mem
	if addr == "" {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return m, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				m.RSS = kb << 10
			}
		}
		return m, nil
	}
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&m)
	return m, err
}

func saveHeapProfile(stats, file string) error {
	resp, err := http.Get("http://" + stats + "/heap")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}
