package testenv

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"io"
	"log"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Logs keeps what a test's loggers write, to look for what must not be
// logged. It is the io.Writer of slog's text handler (as porta's CLI logs)
// and, with CaptureStandardLog, of the log package.
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// NewLogs returns Logs and a logger that writes to them at level.
func NewLogs(level slog.Level) (*Logs, *slog.Logger) {
	l := &Logs{}
	return l, slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: level}))
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// CaptureStandardLog sends the log package's default logger to l until the
// test ends: net/http writes there when it is given no logger, at every
// level. A test that uses it must not run in parallel.
func (l *Logs) CaptureStandardLog(t testing.TB) {
	old := log.Writer()
	log.SetOutput(io.MultiWriter(old, l))
	t.Cleanup(func() { log.SetOutput(old) })
}

// Lines are the lines written so far.
func (l *Logs) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSuffix(l.buf.String(), "\n"), "\n")
}

// Private is what must stay out of every log line above debug.
type Private struct {
	Names []string // names queried, or tunneled to
	Ports []string // tunnel targets' ports
	Words []string // anything else, such as a URL's query
}

// urlWithQuery is any URL with a query string.
var urlWithQuery = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"?]*\?`)

// Leaks are the lines of l that show any of p, or a URL with a query
// string. A name shows as text (ignoring case; also its first label, when
// that has 5 letters or more), or in its DNS wire form: raw, in hex, or in
// base64 or base64url at any offset. A port shows as a number of its own.
func (l *Logs) Leaks(p Private) []string {
	var pats []string
	for _, name := range p.Names {
		name = strings.TrimSuffix(name, ".")
		pats = append(pats, regexp.QuoteMeta(name))
		if label, _, _ := strings.Cut(name, "."); len(label) >= 5 {
			pats = append(pats, regexp.QuoteMeta(label))
		}
		for _, enc := range wireEncodings(name) {
			pats = append(pats, regexp.QuoteMeta(enc))
		}
	}
	for _, port := range p.Ports {
		pats = append(pats, `\b`+regexp.QuoteMeta(port)+`\b`)
	}
	for _, w := range p.Words {
		pats = append(pats, regexp.QuoteMeta(w))
	}
	pats = append(pats, urlWithQuery.String())
	re := regexp.MustCompile(`(?i)` + strings.Join(pats, "|"))
	var leaks []string
	for _, line := range l.Lines() {
		if re.MatchString(line) {
			leaks = append(leaks, line)
		}
	}
	return leaks
}

// wireEncodings are name's DNS wire form in hex and, for each of the three
// offsets it can start at relative to a base64 group, the groups that
// hold nothing but it, in base64 and base64url.
func wireEncodings(name string) []string {
	wire := make([]byte, 255)
	n, err := dns.PackDomainName(dns.Fqdn(name), wire, 0, nil, false)
	if err != nil {
		panic(err)
	}
	wire = wire[:n]
	encs := []string{hex.EncodeToString(wire)}
	for skip := range 3 {
		whole := wire[skip:]
		whole = whole[:len(whole)/3*3]
		encs = append(encs, base64.StdEncoding.EncodeToString(whole), base64.RawURLEncoding.EncodeToString(whole))
	}
	return encs
}
