package doh

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// udpSockets is how many UDP sockets an upstream uses at once.
	udpSockets = 8
	// udpSocketUses is how many queries a socket sends before it is
	// replaced, so that source ports keep changing (RFC 5452 §9.2) while
	// the cost of a socket is shared by many queries.
	udpSocketUses = 128
)

var errUpstreamClosed = errors.New("upstream closed")

// udpUpstream asks over UDP, with queries multiplexed by ID over a few
// connected sockets, and again over TCP when the answer is truncated.
type udpUpstream struct {
	addr    string
	timeout time.Duration
	tcp     *streamUpstream
	srtt    atomic.Int64 // ns

	mu     sync.Mutex
	ids    *rand.ChaCha8 // query IDs (RFC 5452 §9.2): a CSPRNG, seeded from crypto/rand
	socks  []*udpSocket  // in use for new queries
	next   int
	closed bool
	all    map[*udpSocket]struct{} // every socket not yet closed
	wg     sync.WaitGroup          // readers
	bufs   sync.Pool               // of *udpReadBuf, the readers' buffers
}

// udpSocket is one connected socket and the queries waiting on it.
type udpSocket struct {
	conn    net.Conn
	mu      sync.Mutex
	pending map[uint16]*udpTry
	uses    int
	retired bool // takes no new queries; closes when pending drains
	dead    bool
}

// An asker is told how a udpTry ended, exactly once: answer runs on the
// socket's reader goroutine with the answer, which carries the try's ID
// and is the reader's buffer, valid only during the call; fail runs on
// any goroutine, with no lock held.
type asker interface {
	answer(r []byte)
	fail(err error)
}

// udpTry is one query on a socket, sent without waiting: its timer resends
// it (same ID) after an interval from the measured round-trip time,
// doubling, until the attempt times out, so that a lost datagram costs a
// resend rather than the whole attempt (RFC 1536 §1), and a late answer
// to the first send still counts.
type udpTry struct {
	u        *udpUpstream
	a        asker
	msg      []byte // the query with the try's ID; its capacity is reused
	s        *udpSocket
	id       uint16
	timer    *time.Timer
	start    time.Time
	deadline time.Time     // of the attempt, or the caller's if sooner
	wait     time.Duration // until the next resend
	resent   bool          // set under s.mu
}

func newUDPUpstream(addr string, timeout time.Duration) *udpUpstream {
	return &udpUpstream{
		addr:    addr,
		timeout: timeout,
		tcp:     newStreamUpstream("tcp://"+addr, addr, "tcp", nil, timeout),
		all:     make(map[*udpSocket]struct{}),
		ids:     newIDSource(),
	}
}

// newIDSource is a ChaCha8 generator with a seed from crypto/rand: as
// unpredictable as crypto/rand, without a system call (and, on a fresh
// goroutine's stack, a stack copy) per query ID; 1.4% of a DoH miss's CPU.
func newIDSource() *rand.ChaCha8 {
	var seed [32]byte
	crand.Read(seed[:])
	return rand.NewChaCha8(seed)
}

func (u *udpUpstream) exchange(ctx context.Context, q []byte) ([]byte, error) {
	r, err := u.exchangeUDP(ctx, q)
	return u.after(ctx, q, r, err)
}

// after is the end of exchange, given what the UDP try brought: the answer
// or the error with the upstream's name, or the answer over TCP when the
// one over UDP was truncated.
func (u *udpUpstream) after(ctx context.Context, q, r []byte, err error) ([]byte, error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	if r[2]&0x02 != 0 { // TC
		return u.tcp.exchange(ctx, q)
	}
	return r, nil
}

// udpResult is a try's outcome for exchangeUDP.
type udpResult struct {
	r   []byte
	err error
}

// chanAsker hands a try's outcome to exchangeUDP; its buffer of one means
// it never blocks.
type chanAsker chan udpResult

func (c chanAsker) answer(r []byte) { c <- udpResult{r: append([]byte(nil), r...)} }
func (c chanAsker) fail(err error)  { c <- udpResult{err: err} }

func (u *udpUpstream) exchangeUDP(ctx context.Context, q []byte) ([]byte, error) {
	ch := make(chan udpResult, 1)
	t := &udpTry{u: u, a: chanAsker(ch)}
	limit, _ := ctx.Deadline()
	u.send(ctx, t, q, limit)
	select {
	case res := <-ch:
		if res.err != nil {
			return nil, res.err
		}
		binary.BigEndian.PutUint16(res.r, binary.BigEndian.Uint16(q)) // the caller's ID
		return res.r, nil
	case <-ctx.Done():
		t.stop(ctx.Err())
		return nil, ctx.Err()
	}
}

// send sends q in t, for at most the attempt timeout or until limit (if
// not zero), and tells t.a how it ends.
func (u *udpUpstream) send(ctx context.Context, t *udpTry, q []byte, limit time.Time) {
	t.msg = append(t.msg[:0], q...)
	t.start = time.Now()
	t.deadline = t.start.Add(u.timeout)
	if !limit.IsZero() && limit.Before(t.deadline) {
		t.deadline = limit
	}
	t.wait = u.resendAfter()
	if err := u.socket(ctx, t); err != nil {
		t.a.fail(err)
		return
	}
	if _, err := t.s.conn.Write(t.msg); err != nil {
		t.stop(err)
	}
}

// expire is t's timer: it resends t, or ends it when its time is up.
func (t *udpTry) expire() {
	s := t.s
	s.mu.Lock()
	if s.pending[t.id] != t { // answered or stopped already
		s.mu.Unlock()
		return
	}
	left := time.Until(t.deadline)
	if left <= 0 {
		s.mu.Unlock()
		t.stop(context.DeadlineExceeded)
		return
	}
	_, err := s.conn.Write(t.msg)
	if err == nil {
		t.resent = true
		t.wait *= 2
		t.timer.Reset(min(t.wait, left))
	}
	s.mu.Unlock()
	if err != nil {
		t.stop(err)
	}
}

// stop ends t with err unless it has ended already.
func (t *udpTry) stop(err error) {
	if t.u.forget(t) {
		t.timer.Stop()
		t.a.fail(err)
	}
}

// forget takes t off its socket and reports whether it was still there;
// the last query on a retired socket closes it.
func (u *udpUpstream) forget(t *udpTry) bool {
	s := t.s
	if s == nil { // never sent
		return false
	}
	s.mu.Lock()
	mine := s.pending[t.id] == t
	if mine {
		delete(s.pending, t.id)
	}
	closeIt := mine && s.retired && len(s.pending) == 0
	s.mu.Unlock()
	if closeIt {
		s.conn.Close()
	}
	return mine
}

// resendAfter is four smoothed round-trip times, at least 100 ms; the
// attempt timeout before anything is measured.
func (u *udpUpstream) resendAfter() time.Duration {
	srtt := time.Duration(u.srtt.Load())
	if srtt == 0 {
		return u.timeout
	}
	return max(4*srtt, 100*time.Millisecond)
}

func (u *udpUpstream) measured(rtt time.Duration) {
	old := u.srtt.Load()
	if old == 0 {
		u.srtt.Store(int64(rtt))
		return
	}
	u.srtt.Store((7*old + int64(rtt)) / 8)
}

// socket registers t, with an unused random ID, on a socket, opening or
// replacing one as needed, and starts t's timer.
func (u *udpUpstream) socket(ctx context.Context, t *udpTry) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	for {
		if u.closed {
			return errUpstreamClosed
		}
		if len(u.socks) < udpSockets {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "udp", u.addr)
			if err != nil {
				return err
			}
			if uc, ok := conn.(*net.UDPConn); ok {
				uc.SetReadBuffer(1 << 20) // bursts of answers; best effort
			}
			s := &udpSocket{conn: conn, pending: make(map[uint16]*udpTry)}
			u.socks = append(u.socks, s)
			u.all[s] = struct{}{}
			u.wg.Add(1)
			go u.read(s)
		}
		u.next = (u.next + 1) % len(u.socks)
		s := u.socks[u.next]
		s.mu.Lock()
		if s.dead {
			s.mu.Unlock()
			u.socks = append(u.socks[:u.next], u.socks[u.next+1:]...)
			continue
		}
		s.uses++
		if s.uses >= udpSocketUses {
			s.retired = true
			u.socks = append(u.socks[:u.next], u.socks[u.next+1:]...)
		}
		s.register(t, u.ids)
		s.mu.Unlock()
		return nil
	}
}

// register gives t an unused random ID from ids on s, whose mu is held
// (and ids's owner's), and starts its timer: t is complete before the
// reader can see it.
func (s *udpSocket) register(t *udpTry, ids *rand.ChaCha8) {
	for {
		id := uint16(ids.Uint64())
		if _, taken := s.pending[id]; !taken {
			t.s, t.id = s, id
			binary.BigEndian.PutUint16(t.msg, id)
			t.timer = time.AfterFunc(min(t.wait, time.Until(t.deadline)), t.expire)
			s.pending[id] = t
			return
		}
	}
}

// read hands answers to the queries waiting for their IDs until the
// socket closes or fails; then it fails whatever still waits.
func (u *udpUpstream) read(s *udpSocket) {
	defer u.wg.Done()
	// Sockets are replaced every udpSocketUses queries; their readers'
	// buffers are not: one each was an eighth of what a cache miss
	// allocated.
	b, _ := u.bufs.Get().(*udpReadBuf)
	if b == nil {
		b = newUDPReadBuf()
	}
	defer u.bufs.Put(b)
	readDatagrams(s.conn, b, func(r []byte) {
		if len(r) < 12 {
			return
		}
		s.mu.Lock()
		t := s.pending[binary.BigEndian.Uint16(r)]
		if t != nil {
			delete(s.pending, t.id)
		}
		closeIt := t != nil && s.retired && len(s.pending) == 0
		sample := t != nil && !t.resent // Karn: only unambiguous samples
		s.mu.Unlock()
		if sample {
			u.measured(time.Since(t.start))
		}
		if t != nil {
			t.timer.Stop()
			t.a.answer(r)
		}
		if closeIt {
			s.conn.Close()
		}
	})
	s.mu.Lock()
	s.dead, s.retired = true, true
	var failed []*udpTry
	for id, t := range s.pending {
		failed = append(failed, t)
		delete(s.pending, id)
	}
	s.mu.Unlock()
	for _, t := range failed {
		t.timer.Stop()
		t.a.fail(errSocketFailed)
	}
	s.conn.Close()
	u.mu.Lock()
	delete(u.all, s)
	u.mu.Unlock()
}

var errSocketFailed = errors.New("socket failed")

func (u *udpUpstream) close() {
	u.mu.Lock()
	u.closed = true
	u.socks = nil
	for s := range u.all {
		s.conn.Close()
	}
	u.mu.Unlock()
	u.wg.Wait()
	u.tcp.close()
}

func (u *udpUpstream) String() string { return "udp://" + u.addr }
