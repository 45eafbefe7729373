package doh

import (
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// udpBatch is how many answers a UDP upstream's reader takes per
	// system call (recvmmsg).
	udpBatch = 8
	// udpSlot is the room for one answer. We ask for at most ednsSize;
	// a longer answer is cut and marked truncated, to be asked again
	// over TCP.
	udpSlot = 4096
)

// udpReadBuf is a UDP upstream reader's buffers and recvmmsg's headers.
type udpReadBuf struct {
	hdrs [udpBatch]unix.Mmsghdr
	iovs [udpBatch]unix.Iovec
	data [udpBatch * udpSlot]byte
}

// readDatagrams reads datagrams from conn, several per system call, into
// b and hands each to handle, until reading fails.
func readDatagrams(conn net.Conn, b *udpReadBuf, handle func([]byte)) error {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return readDatagramsLoop(conn, b.data[:], handle)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	for i := range b.hdrs {
		b.iovs[i].Base = &b.data[i*udpSlot]
		b.iovs[i].SetLen(udpSlot)
		b.hdrs[i].Hdr.Iov = &b.iovs[i]
		b.hdrs[i].Hdr.SetIovlen(1)
	}
	var n int
	var errno syscall.Errno
	recv := func(fd uintptr) bool {
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), udpBatch, unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN {
			return false
		}
		n, errno = int(r), e
		return true
	}
	for {
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
		for i := range b.hdrs[:n] {
			h := &b.hdrs[i]
			d := b.data[i*udpSlot:][:h.Len]
			if h.Hdr.Flags&unix.MSG_TRUNC != 0 && len(d) >= 12 {
				d[2] |= 0x02 // TC
			}
			handle(d)
		}
	}
}
