package doh

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/porta443/porta/internal/testenv"
)

// TestFailedUpstreamsLogNoQuery: when https:// upstreams fail (an HTTP
// error, a wrong content type, no server at all), the warning names
// neither the query, which a GET carries in its URL, nor the query string
// the upstreams were configured with.
func TestFailedUpstreamsLogNoQuery(t *testing.T) {
	statusErr := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	defer statusErr.Close()
	wrongType := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html>"))
	}))
	defer wrongType.Close()
	gone := httptest.NewTLSServer(http.NotFoundHandler())
	gone.Close()
	roots := x509.NewCertPool()
	for _, s := range []*httptest.Server{statusErr, wrongType} {
		roots.AddCert(s.Certificate())
	}
	logs, log := testenv.NewLogs(slog.LevelInfo)
	var ups []string
	for _, s := range []*httptest.Server{statusErr, wrongType, gone} {
		ups = append(ups, s.URL+"/dns-query?key=privacy-key")
	}
	r := newTestResolver(t, ResolverConfig{Upstreams: ups, TLSConfig: &tls.Config{RootCAs: roots}, Logger: log})
	q := new(dns.Msg)
	q.SetQuestion("privacy-name.example.test.", dns.TypeA)
	resp, err := r.Exchange(t.Context(), q)
	if err != nil || resp.Rcode != dns.RcodeServerFailure {
		t.Fatalf("%v %v, want SERVFAIL", resp, err)
	}
	lines := strings.Join(logs.Lines(), "\n")
	for _, want := range []string{"upstreams failed", "HTTP status 500", "content type", statusErr.URL + "/dns-query"} {
		if !strings.Contains(lines, want) {
			t.Errorf("the log does not say %q:\n%s", want, lines)
		}
	}
	for _, l := range logs.Leaks(testenv.Private{Names: []string{"privacy-name.example.test"}, Words: []string{"privacy-key"}}) {
		t.Errorf("logged at info: %s", l)
	}
}
