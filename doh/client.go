package doh

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/miekg/dns"
	"github.com/porta443/porta/internal/redact"
)

// MediaType is the content type of DoH requests and answers (RFC 8484 §6).
const MediaType = "application/dns-message"

// Client sends DNS queries over HTTPS (RFC 8484). It is an Exchanger.
type Client struct {
	// URL is the DoH endpoint, e.g. "https://dns.example/dns-query".
	URL string
	// HTTPClient sends the requests. nil means http.DefaultClient.
	HTTPClient *http.Client
	// Method is http.MethodGet (cacheable; the default) or http.MethodPost.
	// Queries too long for a GET URL are POSTed anyway.
	Method string
}

// maxGETQuery is the largest query sent by GET; beyond it URLs get long.
const maxGETQuery = 2048

// Exchange sends m with ID 0 (RFC 8484 §4.1) and returns the answer with
// m's ID. A status other than 200 is an error.
func (c *Client) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	wire, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("doh: pack query: %w", err)
	}
	wire[0], wire[1] = 0, 0
	body, err := c.exchangeWire(ctx, wire)
	if err != nil {
		return nil, err
	}
	r := new(dns.Msg)
	if err := r.Unpack(body); err != nil {
		return nil, c.errorf("unpack answer: %w", err)
	}
	r.Id = m.Id
	return r, nil
}

// exchangeWire sends a query in wire form and returns the answer's body.
func (c *Client) exchangeWire(ctx context.Context, wire []byte) ([]byte, error) {
	var req *http.Request
	var err error
	if c.Method == http.MethodPost || len(wire) > maxGETQuery {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(wire))
		if err == nil {
			req.Header.Set("Content-Type", MediaType)
		}
	} else {
		sep := "?"
		if strings.Contains(c.URL, "?") {
			sep = "&"
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodGet,
			c.URL+sep+"dns="+base64.RawURLEncoding.EncodeToString(wire), nil)
	}
	if err != nil {
		return nil, fmt.Errorf("doh: %w", err)
	}
	req.Header.Set("Accept", MediaType)
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("doh: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxMessageSize+1))
	if err != nil {
		return nil, c.errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, c.errorf("HTTP status %s", resp.Status)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != MediaType {
		return nil, c.errorf("answer has content type %q", resp.Header.Get("Content-Type"))
	}
	if len(body) > MaxMessageSize {
		return nil, c.errorf("answer longer than %d bytes", MaxMessageSize)
	}
	return capTTLs(body, resp.Header), nil
}

// errorf is an error about c.URL's answer. It names c.URL cut to scheme,
// host and path: an error's text may reach a log.
func (c *Client) errorf(format string, args ...any) error {
	return fmt.Errorf("doh: %s: "+format, append([]any{redact.URL(c.URL)}, args...)...)
}

// capTTLs lowers the answer's TTLs to the freshness HTTP gives it (RFC 8484
// §5.1): max-age less Age, or the TTLs less Age when there is no max-age,
// since an HTTP cache on the way may have held the answer that long. The
// answer is returned as it is when no TTL needs lowering.
func capTTLs(wire []byte, h http.Header) []byte {
	age, _ := strconv.ParseUint(strings.TrimSpace(h.Get("Age")), 10, 32)
	maxAge, hasMaxAge := cacheControlMaxAge(h.Get("Cache-Control"))
	if age == 0 && !hasMaxAge {
		return wire
	}
	m := new(dns.Msg)
	if m.Unpack(wire) != nil {
		return wire // the resolver reports the malformed answer
	}
	changed := false
	capRR := func(rr dns.RR) {
		hdr := rr.Header()
		if hdr.Rrtype == dns.TypeOPT {
			return
		}
		ttl := uint64(hdr.Ttl)
		if hasMaxAge && ttl > maxAge {
			ttl = maxAge
		}
		ttl -= min(ttl, age)
		if uint32(ttl) != hdr.Ttl {
			hdr.Ttl, changed = uint32(ttl), true
		}
	}
	for _, section := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range section {
			capRR(rr)
		}
	}
	if !changed {
		return wire
	}
	out, err := m.Pack()
	if err != nil {
		return wire
	}
	return out
}

// cacheControlMaxAge finds max-age in a Cache-Control header.
func cacheControlMaxAge(cc string) (uint64, bool) {
	for part := range strings.SplitSeq(cc, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && strings.EqualFold(k, "max-age") {
			n, err := strconv.ParseUint(strings.Trim(v, `"`), 10, 32)
			return n, err == nil
		}
	}
	return 0, false
}
