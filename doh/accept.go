package doh

import (
	"strconv"
	"strings"
)

// accepts reports whether Accept header values allow an
// application/dns-message answer: no header at all, or a best-matching
// media range (the most specific one: exact, application/*, */*) whose
// quality is above 0 (RFC 9110 §12.5.1).
func accepts(values []string) bool {
	if len(values) == 0 {
		return true
	}
	best, q := -1, 0.0
	for _, v := range values {
		for r := range strings.SplitSeq(v, ",") {
			mt, params, _ := strings.Cut(r, ";")
			mt = strings.TrimSpace(mt)
			spec := -1
			switch {
			case strings.EqualFold(mt, MediaType):
				spec = 2
			case strings.EqualFold(mt, "application/*"):
				spec = 1
			case mt == "*/*":
				spec = 0
			}
			if spec < best || spec < 0 {
				continue
			}
			best, q = spec, quality(params)
		}
	}
	return best >= 0 && q > 0
}

// quality is the q parameter among a media range's parameters; 1 if absent,
// 0 if malformed.
func quality(params string) float64 {
	for p := range strings.SplitSeq(params, ";") {
		k, v, _ := strings.Cut(p, "=")
		if !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f < 0 || f > 1 {
			return 0
		}
		return f
	}
	return 1
}
