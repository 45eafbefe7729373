//go:build !linux

package doh

import "net"

// udpReadBuf is a UDP upstream reader's buffer.
type udpReadBuf struct {
	data [MaxMessageSize]byte
}

func newUDPReadBuf() *udpReadBuf { return new(udpReadBuf) }

// readDatagrams reads datagrams from conn into b and hands each to
// handle, until reading fails.
func readDatagrams(conn net.Conn, b *udpReadBuf, handle func([]byte)) error {
	return readDatagramsLoop(conn, b.data[:], handle)
}
