package httpproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// targetAddress validates an authority (host:port, or host alone when
// defaultPort is set) and returns it as host:port for Dial. Host names
// are checked for plausible characters only, never resolved.
func targetAddress(authority, defaultPort string) (string, error) {
	host, port, err := net.SplitHostPort(authority)
	if err != nil {
		if defaultPort == "" {
			return "", fmt.Errorf("httpproxy: target %q: want host:port", authority)
		}
		host, port = authority, defaultPort
		if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
			host = host[1 : len(host)-1]
		}
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return "", fmt.Errorf("httpproxy: target %q: bad port", authority)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return "", fmt.Errorf("httpproxy: target %q: zoned address", authority)
		}
		return net.JoinHostPort(ip.String(), port), nil
	}
	if !validName(host) {
		return "", fmt.Errorf("httpproxy: target %q: bad host name", authority)
	}
	return net.JoinHostPort(host, port), nil
}

// validName reports whether name is a plausible host name: letters,
// digits, '-', '_' and '.', 1 to 253 bytes.
func validName(name string) bool {
	if len(name) == 0 || len(name) > 253 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// StatusCoder is an error that knows the HTTP status a proxy client should
// see. A DialFunc's error (or one it wraps, or a connection's Established
// error) may implement it to choose the status; only 4xx and 5xx count.
type StatusCoder interface {
	HTTPStatus() int
}

// statusFor maps a dial error to the status and short reason a client is
// told:
//
//   - an error that implements StatusCoder: its status and status text;
//   - os.ErrPermission (EACCES, EPERM): 403 target not allowed;
//   - a timeout (context.DeadlineExceeded, net.Error.Timeout): 504;
//   - ECONNREFUSED: 502 connection refused;
//   - *net.DNSError: 502 host not found;
//   - anything else: 502 cannot reach target.
func statusFor(err error) (int, string) {
	var dnsErr *net.DNSError
	var netErr net.Error
	var sc StatusCoder
	switch {
	case errors.As(err, &sc) && sc.HTTPStatus() >= 400 && sc.HTTPStatus() <= 599:
		return sc.HTTPStatus(), strings.ToLower(http.StatusText(sc.HTTPStatus()))
	case errors.Is(err, os.ErrPermission):
		return http.StatusForbidden, "target not allowed"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return http.StatusGatewayTimeout, "target timed out"
	case errors.Is(err, syscall.ECONNREFUSED):
		return http.StatusBadGateway, "connection refused"
	case errors.As(err, &dnsErr):
		return http.StatusBadGateway, "host not found"
	}
	return http.StatusBadGateway, "cannot reach target"
}
