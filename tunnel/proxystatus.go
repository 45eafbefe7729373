package tunnel

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"syscall"
)

// proxyStatus maps a tunnel error to the HTTP status and RFC 9209
// Proxy-Status error type an authenticated client is told.
func proxyStatus(err error) (status int, errType string) {
	var dnsErr *dnsError
	var netErr net.Error
	switch {
	case errors.Is(err, ErrBadTarget):
		return http.StatusBadRequest, "http_request_error"
	case errors.Is(err, errTooManyStreams), errors.Is(err, errTooManyFlows):
		return http.StatusTooManyRequests, "connection_limit_reached"
	case errors.Is(err, errTooEarly):
		return http.StatusTooEarly, "http_request_denied"
	case errors.Is(err, errClosed):
		return http.StatusServiceUnavailable, "proxy_internal_error"
	case errors.Is(err, errNotSupported):
		return http.StatusNotImplemented, "http_request_denied"
	case errors.As(err, &dnsErr):
		if errors.Is(err, context.DeadlineExceeded) {
			return http.StatusGatewayTimeout, "dns_timeout"
		}
		return http.StatusBadGateway, "dns_error"
	case errors.Is(err, ErrProhibited):
		return http.StatusForbidden, "destination_ip_prohibited"
	case errors.Is(err, syscall.ECONNREFUSED):
		return http.StatusBadGateway, "connection_refused"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return http.StatusGatewayTimeout, "connection_timeout"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return http.StatusBadGateway, "destination_ip_unroutable"
	}
	return http.StatusBadGateway, "destination_unavailable"
}

// writeProxyError answers an authenticated client whose request failed.
func writeProxyError(w http.ResponseWriter, r *http.Request, name string, err error) {
	status, typ := proxyStatus(err)
	h := w.Header()
	h.Set("Proxy-Status", name+"; error="+typ+"; details="+sfString(err.Error()))
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.ProtoMajor == 1 {
		h.Set("Connection", "close")
	}
	w.WriteHeader(status)
	w.Write([]byte(typ + "\n"))
}

// sfString renders s as an RFC 8941 structured-field string: printable
// ASCII only, with '"' and '\' escaped, at most 200 bytes.
func sfString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s) && i < 200; i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		default:
			b.WriteByte('?')
		}
	}
	b.WriteByte('"')
	return b.String()
}
