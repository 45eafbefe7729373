package socks5

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync/atomic"
	"time"
)

// What may wait for a flow's dial; more is dropped.
const (
	maxQueued      = 8
	maxQueuedBytes = 64 << 10
)

// udpFlow is an association's traffic with one target, over one DialUDP
// connection. Its goroutine (runFlow) dials, sends what was queued
// meanwhile, then reads the target's datagrams until the connection
// fails or is closed.
type udpFlow struct {
	key  string       // DST as the client sent it: the association's map key
	hdr  []byte       // the header of the datagrams to the client: this target as DST
	last atomic.Int64 // when a datagram last passed, since association.start

	// Guarded by the association's mu.
	conn   net.Conn // nil while dialing
	ready  bool     // dialed, and the queue sent: datagrams go straight to conn
	queue  [][]byte
	queued int // bytes in queue
}

// enqueue keeps a copy of d for when the flow is dialed, if there is room.
// The association's mu is held.
func (f *udpFlow) enqueue(d []byte) bool {
	if len(f.queue) >= maxQueued || f.queued+len(d) > maxQueuedBytes {
		return false
	}
	f.queue = append(f.queue, bytes.Clone(d))
	f.queued += len(d)
	return true
}

// open makes the flow to dst, whose first datagram is data, and starts
// its goroutine.
func (a *association) open(dst, data []byte) {
	host, port, err := parseAddr(dst)
	if err != nil {
		a.s.udp.drop(DropBadHeader)
		return
	}
	f := &udpFlow{key: string(dst), hdr: AppendUDPHeader(nil, host, port)}
	f.enqueue(data)
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	if len(a.flows) >= a.s.cfg.MaxUDPFlows {
		a.mu.Unlock()
		a.s.udp.drop(DropTooManyFlows)
		return
	}
	a.flows[f.key] = f
	a.mu.Unlock()
	a.touch(f)
	a.s.udp.flows.Add(1)
	a.s.udp.activeFlows.Add(1)
	a.wg.Go(func() {
		defer a.s.udp.activeFlows.Add(-1)
		a.runFlow(f, request{host: host, port: port}.address())
	})
}

// runFlow dials the flow's target on its own, so that a slow dial holds up
// no other target, then relays the target's datagrams to the client.
func (a *association) runFlow(f *udpFlow, addr string) {
	ctx, cancel := context.WithTimeout(a.ctx, a.s.cfg.DialTimeout)
	conn, err := a.s.cfg.DialUDP(ctx, "udp", addr)
	cancel()
	if err != nil {
		a.log.Debug("socks5: udp dial", "target", addr, "err", err)
		a.mu.Lock()
		lost := len(f.queue)
		a.remove(f)
		a.mu.Unlock()
		a.s.udp.dropped[DropDialFailed].Add(uint64(lost))
		return
	}
	defer conn.Close()
	if !a.flush(f, conn) {
		return
	}
	buf := make([]byte, len(f.hdr)+udpBufferSize)
	n0 := copy(buf, f.hdr)
	for {
		n, err := conn.Read(buf[n0:])
		if err != nil {
			a.mu.Lock()
			closed := a.closed
			a.remove(f)
			a.mu.Unlock()
			if !closed && !errors.Is(err, net.ErrClosed) {
				a.log.Debug("socks5: udp flow", "target", addr, "err", err)
			}
			return
		}
		a.touch(f)
		if _, err := a.pc.WriteToUDPAddrPort(buf[:n0+n], a.peer); err != nil {
			a.s.udp.drop(DropWriteFailed)
			continue
		}
		a.s.udp.out.Add(1)
	}
}

// flush gives the flow its connection and sends what was queued while it
// dialed, in order, and without the lock; datagrams that arrive meanwhile
// join the queue. It reports false if the association has closed.
func (a *association) flush(f *udpFlow, conn net.Conn) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return false
	}
	f.conn = conn
	for len(f.queue) > 0 {
		queue := f.queue
		f.queue, f.queued = nil, 0
		a.mu.Unlock()
		for _, d := range queue {
			a.toTarget(f, conn, d)
		}
		a.mu.Lock()
	}
	f.ready = true
	return true
}

// toTarget writes one datagram to the flow's connection.
func (a *association) toTarget(f *udpFlow, conn net.Conn, d []byte) {
	if _, err := conn.Write(d); err != nil {
		a.s.udp.drop(DropWriteFailed)
		return
	}
	a.s.udp.in.Add(1)
	a.touch(f)
}

func (a *association) touch(f *udpFlow) { f.last.Store(int64(time.Since(a.start))) }

// remove forgets f, unless another flow took its place. The
// association's mu is held.
func (a *association) remove(f *udpFlow) {
	if a.flows[f.key] == f {
		delete(a.flows, f.key)
	}
}
