package server

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// defaultHSTSMaxAge is Config.HSTSMaxAge's default: a year, as Mozilla's
// guidelines and the HSTS preload list ask.
const defaultHSTSMaxAge = 365 * 24 * time.Hour

// hsts is the Strict-Transport-Security header (RFC 6797) the website
// sends over HTTPS. It names no includeSubDomains or preload: the server
// cannot know what its name's subdomains serve.
type hsts struct {
	value []string // nil: none; shared by every response, never written into
}

// newHSTS is the header for Config.HSTSMaxAge, its default filled in.
func newHSTS(maxAge time.Duration) (hsts, error) {
	switch {
	case maxAge < 0:
		return hsts{}, nil
	case maxAge < time.Second:
		return hsts{}, &ConfigError{Field: "HSTSMaxAge", Err: fmt.Errorf("%v is under a second", maxAge)}
	}
	return hsts{value: []string{"max-age=" + strconv.FormatInt(int64(maxAge/time.Second), 10)}}, nil
}

// addTo sets the header in h unless h has one already, for an answer over
// TLS: RFC 6797 §7.2 forbids it on plain HTTP.
func (p hsts) addTo(h http.Header, overTLS bool) {
	if p.value == nil || !overTLS {
		return
	}
	if _, ok := h["Strict-Transport-Security"]; !ok {
		h["Strict-Transport-Security"] = p.value
	}
}
