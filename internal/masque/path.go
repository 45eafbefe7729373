package masque

import (
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// PathPrefix is the start of the default URI template's path, which is
// the one porta serves:
// /.well-known/masque/udp/{target_host}/{target_port}/ (RFC 9298 §2).
const PathPrefix = "/.well-known/masque/udp/"

// ErrPath is wrapped by ParsePath's errors.
var ErrPath = errors.New("masque: not a CONNECT-UDP path")

// Path is the request path that asks for a UDP flow to host:port, with
// the host percent-encoded as an RFC 6570 template expands it: an IPv6
// address's colons become %3A (RFC 9298 §2).
func Path(host string, port uint16) string {
	host = strings.ReplaceAll(url.PathEscape(host), ":", "%3A")
	return PathPrefix + host + "/" + strconv.Itoa(int(port)) + "/"
}

// Target is the host:port that Path's path asks for, ready for
// net.Dial; see ParsePath.
func Target(path string) (string, error) {
	host, port, err := ParsePath(path)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port))), nil
}

// ParsePath reads the target out of a CONNECT-UDP request path written by
// Path or by any client that follows the default template. A query
// string is ignored. The port must be 1-65535 in decimal; the host must
// not be empty and, once decoded, holds no '/'.
func ParsePath(path string) (host string, port uint16, err error) {
	path, _, _ = strings.Cut(path, "?")
	rest, ok := strings.CutPrefix(path, PathPrefix)
	if !ok {
		return "", 0, ErrPath
	}
	rest = strings.TrimSuffix(rest, "/")
	h, p, ok := strings.Cut(rest, "/")
	if !ok || h == "" || strings.Contains(p, "/") {
		return "", 0, ErrPath
	}
	host, err = url.PathUnescape(h)
	if err != nil || host == "" || strings.ContainsAny(host, "/ ") {
		return "", 0, ErrPath
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 || p[0] == '+' {
		return "", 0, ErrPath
	}
	return host, uint16(n), nil
}
