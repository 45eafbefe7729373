package socks5

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
)

// Reply codes (RFC 1928 section 6).
const (
	ReplySucceeded           byte = 0x00
	ReplyGeneralFailure      byte = 0x01
	ReplyNotAllowed          byte = 0x02 // connection not allowed by ruleset
	ReplyNetworkUnreachable  byte = 0x03
	ReplyHostUnreachable     byte = 0x04
	ReplyConnectionRefused   byte = 0x05
	ReplyTTLExpired          byte = 0x06
	ReplyCommandNotSupported byte = 0x07
	ReplyAddressNotSupported byte = 0x08
)

// ReplyCoder is an error that knows its SOCKS5 reply code. A DialFunc's
// error (or one it wraps) may implement it to choose the code.
type ReplyCoder interface {
	SOCKSReply() byte
}

// ReplyCode returns the reply code for a failed dial (with fast open off,
// or a Dial that failed outright):
//
//   - an error that implements ReplyCoder (found with errors.As): its code;
//   - os.ErrPermission (EACCES, EPERM): connection not allowed (0x02);
//   - ECONNREFUSED: connection refused (0x05);
//   - ENETUNREACH: network unreachable (0x03);
//   - *net.DNSError, EHOSTUNREACH: host unreachable (0x04);
//   - a timeout (context.DeadlineExceeded, net.Error.Timeout): TTL
//     expired (0x06), which clients print as a timeout;
//   - anything else: general failure (0x01).
func ReplyCode(err error) byte {
	var rc ReplyCoder
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case err == nil:
		return ReplySucceeded
	case errors.As(err, &rc):
		return rc.SOCKSReply()
	case errors.Is(err, os.ErrPermission):
		return ReplyNotAllowed
	case errors.Is(err, syscall.ECONNREFUSED):
		return ReplyConnectionRefused
	case errors.Is(err, syscall.ENETUNREACH):
		return ReplyNetworkUnreachable
	case errors.As(err, &dnsErr), errors.Is(err, syscall.EHOSTUNREACH):
		return ReplyHostUnreachable
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return ReplyTTLExpired
	}
	return ReplyGeneralFailure
}

// ReplyForProxyStatus maps an RFC 9209 Proxy-Status error type, as an
// HTTP proxy (such as porta's server) reports why a CONNECT failed, to a
// reply code, so that a tunnel's refusal can implement ReplyCoder. It
// takes the bare type ("connection_refused") or a whole Proxy-Status
// header value, from whose first entry it takes the error parameter.
func ReplyForProxyStatus(errorType string) byte {
	errorType = proxyStatusErrorType(errorType)
	switch errorType {
	case "destination_ip_prohibited", "http_request_denied", "proxy_configuration_error":
		return ReplyNotAllowed
	case "connection_refused":
		return ReplyConnectionRefused
	case "destination_ip_unroutable":
		return ReplyNetworkUnreachable
	case "dns_error", "destination_not_found", "destination_unavailable":
		return ReplyHostUnreachable
	case "dns_timeout", "connection_timeout":
		return ReplyTTLExpired
	}
	return ReplyGeneralFailure
}

// proxyStatusErrorType returns the error parameter of a Proxy-Status
// header's first entry ("porta; error=dns_error; details=..."), or s
// itself if it has none.
func proxyStatusErrorType(s string) string {
	entry, _, _ := strings.Cut(s, ",")
	for _, param := range strings.Split(entry, ";") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(param), "error="); ok {
			return strings.Trim(v, `" `)
		}
	}
	return strings.TrimSpace(s)
}
