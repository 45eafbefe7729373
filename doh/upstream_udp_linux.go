package doh

import (
	"errors"
	"net"
	"syscall"

	"github.com/porta443/porta/internal/mmsg"
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
type udpReadBuf struct{ *mmsg.Batch }

func newUDPReadBuf() *udpReadBuf { return &udpReadBuf{mmsg.NewBatch(udpBatch, udpSlot, false)} }

// readDatagrams reads datagrams from conn, several per system call, into
// b and hands each to handle, until reading fails.
func readDatagrams(conn net.Conn, b *udpReadBuf, handle func([]byte)) error {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return errors.New("doh: UDP upstream connection is not a socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	for {
		n, err := b.Recv(rc, nil)
		if err != nil {
			return err
		}
		for i := range n {
			d, cut := b.Datagram(i)
			if cut && len(d) >= 12 {
				d[2] |= 0x02 // TC
			}
			handle(d)
		}
	}
}
