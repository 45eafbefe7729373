package httpproxy

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// pacTemplate sends local names and addresses direct, and everything
// else to %s (never DIRECT: nothing may go around the tunnel).
const pacTemplate = `function FindProxyForURL(url, host) {
  if (isPlainHostName(host) || host == "localhost" || shExpMatch(host, "*.localhost") ||
      shExpMatch(host, "127.*") || host == "::1" || host == "[::1]") {
    return "DIRECT";
  }
  return "%s";
}
`

// servePAC serves the proxy auto-configuration file.
func (s *Server) servePAC(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-ns-proxy-autoconfig")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write([]byte(s.pac(r)))
}

func (s *Server) pac(r *http.Request) string {
	if s.cfg.PAC != "" {
		return s.cfg.PAC
	}
	proxies := s.cfg.PACProxies
	if proxies == nil {
		proxies = []string{"PROXY " + selfAddress(r)}
	}
	return strings.Replace(pacTemplate, "%s", strings.Join(proxies, "; "), 1)
}

// isSelf reports whether an absolute-form request names the address it
// came to.
func isSelf(r *http.Request) bool {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	self, err := netip.ParseAddrPort(local.String())
	if err != nil {
		return false
	}
	port := r.URL.Port()
	if port == "" {
		port = "80"
		if r.URL.Scheme == "https" {
			port = "443"
		}
	}
	target, err := netip.ParseAddrPort(net.JoinHostPort(r.URL.Hostname(), port))
	return err == nil && target.Addr().Unmap() == self.Addr().Unmap() && target.Port() == self.Port()
}

// selfAddress is the address the request came to: this proxy.
func selfAddress(r *http.Request) string {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return a.String()
	}
	if addr, err := targetAddress(r.Host, "80"); err == nil {
		return addr
	}
	return "127.0.0.1"
}
