package testenv

import (
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scraped is one scrape of a Prometheus /metrics endpoint.
type Scraped map[string]*dto.MetricFamily

// Scrape fetches http://addr/metrics and parses it as Prometheus does.
func Scrape(t testing.TB, addr string) Scraped {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	return Scraped(fams)
}

// Value is the value of the series of metric name whose labels include
// labels ("name", "value", ...): a counter's, a gauge's, or a histogram's
// count. A series that is not there is -1.
func (s Scraped) Value(name string, labels ...string) float64 {
	m := s.series(name, labels)
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return -1
}

// Histogram is the series of histogram name whose labels include labels.
func (s Scraped) Histogram(name string, labels ...string) *dto.Histogram {
	if m := s.series(name, labels); m != nil {
		return m.Histogram
	}
	return nil
}

func (s Scraped) series(name string, labels []string) *dto.Metric {
	fam := s[name]
	if fam == nil {
		return nil
	}
next:
	for _, m := range fam.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

// LabelValues lists every value label takes in metric name's series.
func (s Scraped) LabelValues(name, label string) []string {
	var out []string
	if fam := s[name]; fam != nil {
		for _, m := range fam.Metric {
			for _, lp := range m.Label {
				if lp.GetName() == label {
					out = append(out, lp.GetValue())
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// Names lists the metric families, for error messages.
func (s Scraped) Names() string {
	var out []string
	for n := range s {
		out = append(out, n)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}
