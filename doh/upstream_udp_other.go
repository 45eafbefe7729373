//go:build !linux

package doh

import "net"

// udpReadBuf is a UDP upstream reader's buffer.
type udpReadBuf struct {
	data [MaxMessageSize]byte
}

func newUDPReadBuf() *udpReadBuf { return new(udpReadBuf) }

// readDatagrams reads datagrams from conn into b, one per system call,
// and hands each to handle, until reading fails.
func readDatagrams(conn net.Conn, b *udpReadBuf, handle func([]byte)) error {
	for {
		n, err := conn.Read(b.data[:])
		if err != nil {
			return err
		}
		handle(b.data[:n])
	}
}
