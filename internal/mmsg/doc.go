// Package mmsg reads UDP datagrams several per system call (recvmmsg) on
// Linux, into buffers it reuses. The client's DNS listener and the doh
// package's UDP upstreams read with it.
//
// Its calls are raw system calls on a non-blocking socket: they never
// wait, and through syscall.Syscall each of them woke the runtime's sysmon
// thread whenever it had gone to sleep, which then spun every 20 µs for a
// millisecond (15% of the client's CPU under dnsperf).
package mmsg
