package client

import (
	"os"
	"runtime"
	"syscall"
	"unsafe"

	"github.com/porta443/porta/internal/mmsg"
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

// batch is the read loop's state: the queries it reads (with their
// senders), the answers it writes, and sendmmsg's headers, all reused.
type batch struct {
	in      *mmsg.Batch
	out     [batchSize]unix.Mmsghdr
	outIov  [batchSize]unix.Iovec
	answers []byte // the batch's answers, one after another
	ends    [batchSize]int
}

func newBatch() *batch {
	b := &batch{in: mmsg.NewBatch(batchSize, maxQuerySize, true)}
	for i := range b.out {
		b.out[i].Hdr.Iov = &b.outIov[i]
		b.out[i].Hdr.SetIovlen(1)
	}
	return b
}

// readLoop reads queries a batch at a time and answers the batch's hits
// with one sendmmsg, each to the address its query came from.
//
// Both calls are raw system calls on the non-blocking socket (see package
// mmsg for why). The price is that the scheduler cannot take the loop's P
// in a call, and sysmon may sleep on instead of preempting the loop: when
// it has gone yieldEvery batches without waiting for the socket, the loop
// yields, so that the slow path's goroutines run even with GOMAXPROCS=1.
func (s *dnsUDP) readLoop() error {
	rc, err := s.conn.SyscallConn()
	if err != nil {
		return err
	}
	b := newBatch()
	var n int
	var errno syscall.Errno
	busy := 0                    // batches since the loop last waited for the socket
	parks := func() { busy = 0 } // the loop parks: the scheduler has its turn
	var pending []unix.Mmsghdr
	send := func(fd uintptr) bool {
		r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&pending[0])), uintptr(len(pending)), 0, 0, 0)
		n, errno = int(r), e
		return e != unix.EAGAIN
	}
	for {
		got, err := b.in.Recv(rc, parks)
		if err != nil {
			return err
		}
		pending = b.out[:s.answerBatch(b, got)]
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
	for i := range n {
		msg, cut := b.in.Datagram(i)
		if !isQuery(msg) || cut {
			continue
		}
		h := &b.in.Hdrs[i]
		ans, size, ok := s.resolver.AppendCachedUDP(b.answers, msg)
		if ok {
			b.answers = ans
			b.ends[hits] = len(ans)
			b.out[hits].Hdr.Name = h.Hdr.Name
			b.out[hits].Hdr.Namelen = h.Hdr.Namelen
			hits++
			continue
		}
		if addr, ok := b.in.From(i); ok {
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
