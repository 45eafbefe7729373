package tunnel

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
)

// maxAuthHeader bounds the Proxy-Authorization value we are willing to
// decode. Names and tokens are short; anything longer is not ours.
const maxAuthHeader = 512

// authBuf is the scratch of one credential check: the header's base64,
// and what it decodes to.
type authBuf struct {
	src [maxAuthHeader]byte
	dst [maxAuthHeader * 3 / 4]byte
}

// standIn is checked when a request carries no usable Proxy-Authorization,
// so that the check costs what a real one does: a token of the length of
// porta token's, and no name (a name nobody can have).
var standIn = "Basic " + base64.StdEncoding.EncodeToString([]byte(":"+strings.Repeat("x", 43)))

// parseProxyAuth extracts NAME and TOKEN from a Proxy-Authorization value of
// the form "Basic base64(NAME:TOKEN)". It reports ok=false for anything else:
// another scheme, bad base64, a missing colon, an empty name or token, or a
// value longer than maxAuthHeader.
func parseProxyAuth(v string) (name, token string, ok bool) {
	var buf authBuf
	n, t, ok := parseProxyAuthInto(v, &buf)
	return string(n), string(t), ok
}

// parseProxyAuthInto is parseProxyAuth into buf, without allocating.
func parseProxyAuthInto(v string, buf *authBuf) (name, token []byte, ok bool) {
	if len(v) > maxAuthHeader {
		return nil, nil, false
	}
	scheme, rest, found := strings.Cut(v, " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return nil, nil, false
	}
	rest = strings.TrimLeft(rest, " ")
	src := buf.src[:copy(buf.src[:], rest)]
	n, err := base64.StdEncoding.Decode(buf.dst[:], src)
	if err != nil {
		return nil, nil, false
	}
	name, token, found = bytes.Cut(buf.dst[:n], []byte{':'})
	if !found || len(name) == 0 || len(token) == 0 {
		return nil, nil, false
	}
	return name, token, true
}

// credentials checks r's Proxy-Authorization (exactly one) against users,
// and when r has none, or one that does not parse, checks a stand-in:
// every request costs the same, so that the time a request takes does
// not tell a prober that the server reads the header (a stock site never
// does), nor whether a user exists.
func (h *Handler) credentials(r *http.Request) (*user, bool) {
	buf := h.authBufs.Get().(*authBuf)
	defer h.authBufs.Put(buf)
	v, real := standIn, false
	if vals := r.Header["Proxy-Authorization"]; len(vals) == 1 {
		v, real = vals[0], true
	}
	name, token, ok := parseProxyAuthInto(v, buf)
	if !ok {
		name, token, _ = parseProxyAuthInto(standIn, buf)
	}
	us, found := h.cfg.Users.check(name, token)
	return us, found && ok && real
}

func newAuthBufs() *sync.Pool {
	return &sync.Pool{New: func() any { return new(authBuf) }}
}
