package mmsg

import (
	"encoding/binary"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Batch holds the headers, buffers and (if asked for) sender addresses of
// up to n datagrams of at most slot bytes each.
type Batch struct {
	Hdrs  []unix.Mmsghdr // recvmmsg's headers; Hdrs[i].Hdr.Name is the sender of datagram i
	iovs  []unix.Iovec
	names []sockaddr
	buf   []byte
	slot  int

	// Recv's system call, made once: a closure per call would be an
	// allocation per batch.
	recv   func(fd uintptr) bool
	n      int
	errno  syscall.Errno
	onWait func()
}

// sockaddr holds a struct sockaddr_in or sockaddr_in6 as the kernel
// writes it.
type sockaddr [unix.SizeofSockaddrInet6]byte

// NewBatch makes a Batch for n datagrams of at most slot bytes; with
// names, Recv records where each came from (for an unconnected socket).
func NewBatch(n, slot int, names bool) *Batch {
	b := &Batch{
		Hdrs: make([]unix.Mmsghdr, n),
		iovs: make([]unix.Iovec, n),
		buf:  make([]byte, n*slot),
		slot: slot,
	}
	if names {
		b.names = make([]sockaddr, n)
	}
	b.recv = func(fd uintptr) bool {
		r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.Hdrs[0])), uintptr(len(b.Hdrs)), 0, 0, 0)
		if e == unix.EAGAIN {
			if b.onWait != nil {
				b.onWait()
			}
			return false
		}
		b.n, b.errno = int(r), e
		return true
	}
	for i := range b.Hdrs {
		b.iovs[i].Base = &b.buf[i*slot]
		b.iovs[i].SetLen(slot)
		b.Hdrs[i].Hdr.Iov = &b.iovs[i]
		b.Hdrs[i].Hdr.SetIovlen(1)
		if names {
			b.Hdrs[i].Hdr.Name = &b.names[i][0]
		}
	}
	return b
}

// Recv waits until the socket behind rc has datagrams and reads as many
// as the batch holds, returning how many. onWait, if set, is called each
// time the socket had none and the caller is about to park.
func (b *Batch) Recv(rc syscall.RawConn, onWait func()) (int, error) {
	b.onWait = onWait
	for {
		if b.names != nil {
			for i := range b.Hdrs {
				b.Hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
			}
		}
		if err := rc.Read(b.recv); err != nil {
			return 0, err
		}
		switch b.errno {
		case 0:
			return b.n, nil
		case unix.EINTR:
		default:
			return 0, os.NewSyscallError("recvmmsg", b.errno)
		}
	}
}

// Datagram is datagram i of the last Recv, and whether the kernel cut it
// to the slot size.
func (b *Batch) Datagram(i int) (data []byte, truncated bool) {
	h := &b.Hdrs[i]
	return b.buf[i*b.slot:][:h.Len], h.Hdr.Flags&unix.MSG_TRUNC != 0
}

// From is the sender of datagram i of the last Recv, for a Batch made
// with names.
func (b *Batch) From(i int) (netip.AddrPort, bool) {
	sa := &b.names[i]
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
