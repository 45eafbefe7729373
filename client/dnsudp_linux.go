package client

import (
	"encoding/binary"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSize is how many datagrams the read loop takes, and answers, per
// system call (recvmmsg, sendmmsg).
const batchSize = 64

// yieldEvery is how many batches in a row the read loop answers before it
// yields the processor, when it never had to wait for queries in between.
const yieldEvery = 16

// maxAnswers bounds the answer buffer the read loop keeps between batches
// (one batch of big answers may take more; the buffer is then let go).
const maxAnswers = 64 << 10

// maxQuerySize is the room for one query in a batch. Real queries are a
// few hundred bytes; a longer datagram is dropped (miekg/dns's server reads
// 512 bytes of one).
const maxQuerySize = 4096

// sockaddr holds a struct sockaddr_in or sockaddr_in6 as the kernel
// writes it.
type sockaddr [unix.SizeofSockaddrInet6]byte

// addrPort is the asker's address for the slow path, which answers with
// WriteToUDPAddrPort.
func (sa *sockaddr) addrPort() (netip.AddrPort, bool) {
	port := binary.BigEndian.Uint16(sa[2:])
	switch binary.NativeEndian.Uint16(sa[:]) {
	case unix.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), port), true
	case unix.AF_INET6:
		a := netip.AddrFrom16([16]byte(sa[8:24]))
		if zone := binary.NativeEndian.Uint32(sa[24:]); zone != 0 {
			a = a.WithZone(strconv.FormatUint(uint64(zone), 10))
		}
		return netip.AddrPortFrom(a, port), true
	}
	return netip.AddrPort{}, false
}

// batch is the read loop's state: the queries it reads, the answers it
// writes, and the headers recvmmsg and sendmmsg take, all reused.
type batch struct {
	in      [batchSize]unix.Mmsghdr
	inIov   [batchSize]unix.Iovec
	from    [batchSize]sockaddr
	out     [batchSize]unix.Mmsghdr
	outIov  [batchSize]unix.Iovec
	queries []byte // batchSize slots of maxQuerySize bytes
	answers []byte // the batch's answers, one after another
	ends    [batchSize]int
}

func newBatch() *batch {
	b := &batch{queries: make([]byte, batchSize*maxQuerySize)}
	for i := range b.in {
		b.inIov[i].Base = &b.queries[i*maxQuerySize]
		b.inIov[i].SetLen(maxQuerySize)
		b.in[i].Hdr.Iov = &b.inIov[i]
		b.in[i].Hdr.SetIovlen(1)
		b.in[i].Hdr.Name = &b.from[i][0]
		b.out[i].Hdr.Iov = &b.outIov[i]
		b.out[i].Hdr.SetIovlen(1)
	}
	return b
}

// readLoop reads queries a batch at a time and answers the batch's hits
// with one sendmmsg, each to the address its query came from.
//
// The socket is non-blocking, so the two calls never wait: they are made
// as raw system calls, which do not tell the scheduler. Through
// syscall.Syscall each of them woke the runtime's sysmon thread whenever
// it had gone to sleep while the loop waited for queries, and sysmon then
// spun every 20 µs for a millisecond: 15% of the process's CPU time under
// dnsperf. The price is that the scheduler cannot take the loop's P in a
// call, and sysmon may sleep on instead of preempting the loop: when it
// has gone yieldEvery batches without waiting for the socket, the loop
// yields, so that the slow path's goroutines run even with GOMAXPROCS=1.
func (s *dnsUDP) readLoop() error {
	rc, err := s.conn.SyscallConn()
	if err != nil {
		return err
	}
	b := newBatch()
	var n int
	var errno syscall.Errno
	busy := 0 // batches since the loop last waited for the socket
	recv := func(fd uintptr) bool {
		r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.in[0])), batchSize, 0, 0, 0)
		if e == unix.EAGAIN {
			busy = 0 // the loop parks: the scheduler has its turn
			return false
		}
		n, errno = int(r), e
		return true
	}
	var pending []unix.Mmsghdr
	send := func(fd uintptr) bool {
		r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&pending[0])), uintptr(len(pending)), 0, 0, 0)
		n, errno = int(r), e
		return e != unix.EAGAIN
	}
	for {
		for i := range b.in {
			b.in[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		}
		if err := rc.Read(recv); err != nil {
			return err
		}
		switch errno {
		case 0:
		case unix.EINTR:
			continue
		default:
			return os.NewSyscallError("recvmmsg", errno)
		}
		pending = b.out[:s.answerBatch(b, n)]
		for len(pending) > 0 {
			if err := rc.Write(send); err != nil {
				return err
			}
			switch errno {
			case 0:
				pending = pending[n:]
			case unix.EINTR:
			default: // that answer's asker, not the socket: skip it
				s.log.Debug("dns: write answer", "err", os.NewSyscallError("sendmmsg", errno))
				pending = pending[1:]
			}
		}
		if busy++; busy == yieldEvery {
			busy = 0
			runtime.Gosched()
		}
	}
}

// answerBatch answers the hits among the n queries just read into b.out,
// and hands the others to the slow path. It returns how many answers
// there are.
func (s *dnsUDP) answerBatch(b *batch, n int) int {
	if cap(b.answers) > maxAnswers {
		b.answers = nil
	}
	b.answers = b.answers[:0]
	hits := 0
	for i := range b.in[:n] {
		h := &b.in[i]
		msg := b.queries[i*maxQuerySize:][:h.Len]
		if !isQuery(msg) || h.Hdr.Flags&unix.MSG_TRUNC != 0 {
			continue
		}
		ans, size, ok := s.resolver.AppendCachedUDP(b.answers, msg)
		if ok {
			b.answers = ans
			b.ends[hits] = len(ans)
			b.out[hits].Hdr.Name = h.Hdr.Name
			b.out[hits].Hdr.Namelen = h.Hdr.Namelen
			hits++
			continue
		}
		if addr, ok := b.from[i].addrPort(); ok {
			s.goSlow(msg, size, addr)
		}
	}
	start := 0
	for j := range b.out[:hits] {
		b.outIov[j].Base = &b.answers[start]
		b.outIov[j].SetLen(b.ends[j] - start)
		start = b.ends[j]
	}
	return hits
}
