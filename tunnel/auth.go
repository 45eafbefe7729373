package tunnel

import (
	"encoding/base64"
	"strings"
)

// maxAuthHeader bounds the Proxy-Authorization value we are willing to
// decode. Names and tokens are short; anything longer is not ours.
const maxAuthHeader = 512

// parseProxyAuth extracts NAME and TOKEN from a Proxy-Authorization value of
// the form "Basic base64(NAME:TOKEN)". It reports ok=false for anything else:
// another scheme, bad base64, a missing colon, an empty name or token, or a
// value longer than maxAuthHeader.
func parseProxyAuth(v string) (name, token string, ok bool) {
	if len(v) > maxAuthHeader {
		return "", "", false
	}
	scheme, rest, found := strings.Cut(v, " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	rest = strings.TrimLeft(rest, " ")
	raw, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return "", "", false
	}
	name, token, found = strings.Cut(string(raw), ":")
	if !found || name == "" || token == "" {
		return "", "", false
	}
	return name, token, true
}
