package server

import (
	"crypto/x509"
	"log/slog"
	"strings"
	"sync"
)

// maxSNINames bounds how many names sniWarnings warns about for one
// certificate: a prober may send any name it likes.
const maxSNINames = 64

// sniWarnings warns, once per name, when clients reach the server by a
// name (their TLS SNI) that its certificate does not cover. It starts
// again for each new certificate.
type sniWarnings struct {
	log      *slog.Logger
	certFile string

	mu      sync.Mutex
	leaf    *x509.Certificate   // what warned is about
	warned  map[string]struct{} // names not covered, already logged
	stopped bool                // maxSNINames reached, and said so
}

// check looks at one handshake's name against the certificate it gets.
func (w *sniWarnings) check(leaf *x509.Certificate, name string) {
	name = strings.ToLower(name)
	if !plausibleHostname(name) || leaf.VerifyHostname(name) == nil {
		return
	}
	w.mu.Lock()
	if w.leaf != leaf {
		w.leaf, w.warned, w.stopped = leaf, map[string]struct{}{}, false
	}
	_, done := w.warned[name]
	full := !done && len(w.warned) >= maxSNINames
	switch {
	case done || full && w.stopped:
		w.mu.Unlock()
		return
	case full:
		w.stopped = true
	default:
		w.warned[name] = struct{}{}
	}
	w.mu.Unlock()

	if full {
		w.log.Warn("more names not covered by the certificate; no more are logged until it changes",
			"file", w.certFile, "names", maxSNINames)
		return
	}
	w.log.Warn("certificate does not cover a name clients reach the server by", "file", w.certFile, "name", name)
}

// plausibleHostname reports whether name could be a DNS name: at most 253
// bytes of letters, digits, '-', '_' and '.'.
func plausibleHostname(name string) bool {
	if len(name) > 253 {
		return false
	}
	for i := range len(name) {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
