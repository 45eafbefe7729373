//go:build !linux

package client

func (s *dnsUDP) readLoop() error { return s.readOne() }
