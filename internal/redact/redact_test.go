package redact

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://dns.example/dns-query?dns=AAABIAAB", "https://dns.example/dns-query"},
		{"https://alice:s3cret@vps.example:8443/p/q?x=1#frag", "https://vps.example:8443/p/q"},
		{"https://[::1]:443/a%2Fb?c", "https://[::1]:443/a%2Fb"},
		{"https://dns.example/dns-query", "https://dns.example/dns-query"},
		{"http://a b/?q=1", "http://a b/"}, // does not parse
		{"", ""},
	} {
		if got := URL(tc.in); got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestError: the URLs of *url.Errors anywhere in an error's tree are cut
// in its text, and the error is still found beneath.
func TestError(t *testing.T) {
	leak := "https://dns.example/dns-query?dns=AAABIAABAAAAAAABA3d3dwdleGFtcGxlA2NvbQAAAQAB"
	ue := &url.Error{Op: "Get", URL: leak, Err: context.DeadlineExceeded}
	odd := &url.Error{Op: "Post", URL: "https://h/\"quoted\"?secret=1", Err: errors.New("EOF")}
	for _, err := range []error{
		ue,
		fmt.Errorf("doh: %w", ue),
		errors.Join(fmt.Errorf("doh: %w", ue), errors.New("udp://127.0.0.1:53: timeout"), fmt.Errorf("x: %w", odd)),
		fmt.Errorf("outer: %w", errors.Join(ue)),
	} {
		got := Error(err)
		msg := got.Error()
		if strings.Contains(msg, "?") || strings.Contains(msg, "secret") || !strings.Contains(msg, `"https://dns.example/dns-query"`) {
			t.Errorf("Error(%q) = %q", err, msg)
		}
		if want := strings.ReplaceAll(err.Error(), leak, "https://dns.example/dns-query"); !strings.Contains(err.Error(), "secret") && msg != want {
			t.Errorf("Error(%q) = %q, want %q", err, msg, want)
		}
		if !errors.Is(got, context.DeadlineExceeded) || !errors.Is(got, err) {
			t.Errorf("Error(%q) hides what it wraps", err)
		}
	}
}

func TestErrorWithNothingToCut(t *testing.T) {
	plain := errors.New("dial tcp 127.0.0.1:443: connect: connection refused")
	clean := &url.Error{Op: "Get", URL: "https://dns.example/dns-query", Err: plain}
	for _, err := range []error{nil, plain, clean} {
		if got := Error(err); got != err {
			t.Errorf("Error(%v) = %v, want it as it is", err, got)
		}
	}
}

// TestErrorFromHTTPClient: what net/http's client returns for a GET with
// a query.
func TestErrorFromHTTPClient(t *testing.T) {
	req, _ := http.NewRequest("GET", "http://127.0.0.1:1/dns-query?dns=AAAB", nil)
	_, err := (&http.Client{Transport: failing{}}).Do(req)
	if got := Error(err).Error(); strings.Contains(got, "dns=") || !strings.Contains(got, "http://127.0.0.1:1/dns-query") {
		t.Errorf("Error(%q) = %q", err, got)
	}
}

type failing struct{}

func (failing) RoundTrip(*http.Request) (*http.Response, error) { return nil, errors.New("refused") }
