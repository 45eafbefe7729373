package doh

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
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
	socks  []*udpSocket // in use for new queries
	next   int
	closed bool
	all    map[*udpSocket]struct{} // every socket not yet closed
	wg     sync.WaitGroup          // readers
	bufs   sync.Pool               // of *[MaxMessageSize]byte, the readers' buffers
}

// udpSocket is one connected socket and the queries waiting on it.
type udpSocket struct {
	conn    net.Conn
	mu      sync.Mutex
	pending map[uint16]chan []byte
	uses    int
	retired bool // takes no new queries; closes when pending drains
	dead    bool
}

func newUDPUpstream(addr string, timeout time.Duration) *udpUpstream {
	return &udpUpstream{
		addr:    addr,
		timeout: timeout,
		tcp:     newStreamUpstream("tcp://"+addr, addr, "tcp", nil, timeout),
		all:     make(map[*udpSocket]struct{}),
	}
}

func (u *udpUpstream) exchange(ctx context.Context, q []byte) ([]byte, error) {
	r, err := u.exchangeUDP(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	if r[2]&0x02 != 0 { // TC
		return u.tcp.exchange(ctx, q)
	}
	return r, nil
}

func (u *udpUpstream) exchangeUDP(ctx context.Context, q []byte) ([]byte, error) {
	s, id, ch, err := u.socket(ctx)
	if err != nil {
		return nil, err
	}
	msg := make([]byte, len(q))
	copy(msg, q)
	binary.BigEndian.PutUint16(msg, id)
	if _, err := s.conn.Write(msg); err != nil {
		u.done(s, id)
		return nil, err
	}
	// Resend (same ID) after an interval from the measured round-trip
	// time, doubling, until the attempt times out: a lost datagram costs
	// a resend rather than the whole attempt (RFC 1536 §1), and a late
	// answer to the first send still counts.
	start := time.Now()
	deadline := start.Add(u.timeout)
	wait := u.resendAfter()
	timer := time.NewTimer(min(wait, u.timeout))
	defer timer.Stop()
	resent := false
	for {
		select {
		case r, ok := <-ch:
			u.done(s, id)
			if !ok {
				return nil, errors.New("socket failed")
			}
			if !resent { // Karn: only unambiguous samples
				u.measured(time.Since(start))
			}
			binary.BigEndian.PutUint16(r, binary.BigEndian.Uint16(q)) // the caller's ID
			return r, nil
		case <-timer.C:
			left := time.Until(deadline)
			if left <= 0 {
				u.done(s, id)
				return nil, context.DeadlineExceeded
			}
			if _, err := s.conn.Write(msg); err != nil {
				u.done(s, id)
				return nil, err
			}
			resent = true
			wait *= 2
			timer.Reset(min(wait, left))
		case <-ctx.Done():
			u.done(s, id)
			return nil, ctx.Err()
		}
	}
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

// socket returns a socket, opening or replacing one as needed, with an
// unused random ID registered on it for one query.
func (u *udpUpstream) socket(ctx context.Context) (*udpSocket, uint16, chan []byte, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for {
		if u.closed {
			return nil, 0, nil, errUpstreamClosed
		}
		if len(u.socks) < udpSockets {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "udp", u.addr)
			if err != nil {
				return nil, 0, nil, err
			}
			if uc, ok := conn.(*net.UDPConn); ok {
				uc.SetReadBuffer(1 << 20) // bursts of answers; best effort
			}
			s := &udpSocket{conn: conn, pending: make(map[uint16]chan []byte)}
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
		id, ch := s.register()
		s.mu.Unlock()
		return s, id, ch, nil
	}
}

// register picks an unused random ID for a query on s, whose mu is held.
func (s *udpSocket) register() (uint16, chan []byte) {
	ch := make(chan []byte, 1)
	var b [2]byte
	for {
		rand.Read(b[:])
		id := binary.BigEndian.Uint16(b[:])
		if _, taken := s.pending[id]; !taken {
			s.pending[id] = ch
			return id, ch
		}
	}
}

// done forgets a query; the last query on a retired socket closes it.
func (u *udpUpstream) done(s *udpSocket, id uint16) {
	s.mu.Lock()
	delete(s.pending, id)
	closeIt := s.retired && len(s.pending) == 0
	s.mu.Unlock()
	if closeIt {
		s.conn.Close()
	}
}

// read hands answers to the queries waiting for their IDs until the
// socket closes or fails; then it fails whatever still waits.
func (u *udpUpstream) read(s *udpSocket) {
	defer u.wg.Done()
	// Sockets are replaced every udpSocketUses queries; their readers'
	// buffers are not: 64 KiB each was an eighth of what a cache miss
	// allocated.
	b, _ := u.bufs.Get().(*[MaxMessageSize]byte)
	if b == nil {
		b = new([MaxMessageSize]byte)
	}
	defer u.bufs.Put(b)
	buf := b[:]
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			break
		}
		if n < 12 {
			continue
		}
		s.mu.Lock()
		id := binary.BigEndian.Uint16(buf)
		ch := s.pending[id]
		delete(s.pending, id)
		s.mu.Unlock()
		if ch != nil {
			ch <- append([]byte(nil), buf[:n]...)
		}
	}
	s.mu.Lock()
	s.dead, s.retired = true, true
	for id, ch := range s.pending {
		close(ch)
		delete(s.pending, id)
	}
	s.mu.Unlock()
	s.conn.Close()
	u.mu.Lock()
	delete(u.all, s)
	u.mu.Unlock()
}

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
