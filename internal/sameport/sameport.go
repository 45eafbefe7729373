// Package sameport opens a TCP listener and a UDP socket on one address
// and port, as a server of both (QUIC beside TLS, DNS over UDP and TCP)
// needs.
package sameport

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// Listen opens TCP and UDP on addr. With port 0, UDP takes the port TCP
// was given, and if that one is taken on UDP the pair is tried again with
// another port.
func Listen(addr string) (net.Listener, net.PacketConn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	for tries := 0; ; tries++ {
		tcp, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, nil, err
		}
		_, tcpPort, _ := net.SplitHostPort(tcp.Addr().String())
		udp, err := net.ListenPacket("udp", net.JoinHostPort(host, tcpPort))
		if err == nil {
			return tcp, udp, nil
		}
		tcp.Close()
		if port != "0" || tries == 20 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, fmt.Errorf("UDP: %w", err)
		}
	}
}
