// Package redact cuts out of what is logged above debug level what would
// tell what a user asked for: a URL keeps its scheme, host and path (no
// user, query or fragment), and an error keeps its text with the URL of
// every *url.Error it wraps cut so. Use it on each value that goes into a
// log line at info, warn or error; debug lines keep everything.
package redact

import (
	"net/url"
	"strconv"
	"strings"
)

// URL returns raw cut to scheme://host/path. A raw URL that does not
// parse is cut before its first '?' or '#'.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.IndexAny(raw, "?#"); i >= 0 {
			return raw[:i]
		}
		return raw
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}).String()
}

// Error returns err with the URL of every *url.Error in its tree cut by
// URL in its text; errors.Is and errors.As see err beneath. An error with
// nothing to cut, and nil, are returned as they are.
func Error(err error) error {
	msg := ""
	for _, raw := range urls(err, nil) {
		cut := URL(raw)
		if cut == raw {
			continue
		}
		if msg == "" {
			msg = err.Error()
		}
		// url.Error quotes the URL (%q); in it, a URL may be escaped.
		msg = strings.ReplaceAll(msg, raw, cut)
		msg = strings.ReplaceAll(msg, strconv.Quote(raw), strconv.Quote(cut))
	}
	if msg == "" {
		return err
	}
	return &cutError{msg: msg, err: err}
}

// urls appends the URLs of the *url.Errors in err's tree to list.
func urls(err error, list []string) []string {
	if ue, ok := err.(*url.Error); ok && ue.URL != "" {
		list = append(list, ue.URL)
	}
	switch e := err.(type) {
	case interface{ Unwrap() error }:
		return urls(e.Unwrap(), list)
	case interface{ Unwrap() []error }:
		for _, inner := range e.Unwrap() {
			list = urls(inner, list)
		}
	}
	return list
}

type cutError struct {
	msg string
	err error
}

func (e *cutError) Error() string { return e.msg }
func (e *cutError) Unwrap() error { return e.err }
