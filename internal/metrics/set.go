package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Emit reports one value of a metric, with its label values in the order
// the metric's labels were given.
type Emit func(value float64, labelValues ...string)

// EmitHistogram reports one histogram: its count, sum and cumulative
// bucket counts by upper bound.
type EmitHistogram func(count uint64, sum float64, buckets map[float64]uint64, labelValues ...string)

// Set is a prometheus.Collector whose metrics are read at scrape time by
// the funcs they were added with. Add every metric before registering it.
type Set struct {
	metrics []metric
}

type metric struct {
	desc    *prometheus.Desc
	collect func(ch chan<- prometheus.Metric)
}

// Counter adds a counter family; collect reports its values.
func (s *Set) Counter(name, help string, labels []string, collect func(Emit)) {
	s.scalar(prometheus.CounterValue, name, help, labels, collect)
}

// Gauge adds a gauge family; collect reports its values.
func (s *Set) Gauge(name, help string, labels []string, collect func(Emit)) {
	s.scalar(prometheus.GaugeValue, name, help, labels, collect)
}

func (s *Set) scalar(typ prometheus.ValueType, name, help string, labels []string, collect func(Emit)) {
	desc := prometheus.NewDesc(name, help, labels, nil)
	s.metrics = append(s.metrics, metric{desc: desc, collect: func(ch chan<- prometheus.Metric) {
		collect(func(v float64, lv ...string) {
			ch <- prometheus.MustNewConstMetric(desc, typ, v, lv...)
		})
	}})
}

// Histogram adds a histogram family; collect reports its histograms.
func (s *Set) Histogram(name, help string, labels []string, collect func(EmitHistogram)) {
	desc := prometheus.NewDesc(name, help, labels, nil)
	s.metrics = append(s.metrics, metric{desc: desc, collect: func(ch chan<- prometheus.Metric) {
		collect(func(count uint64, sum float64, buckets map[float64]uint64, lv ...string) {
			ch <- prometheus.MustNewConstHistogram(desc, count, sum, buckets, lv...)
		})
	}})
}

// Describe implements prometheus.Collector.
func (s *Set) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range s.metrics {
		ch <- m.desc
	}
}

// Collect implements prometheus.Collector.
func (s *Set) Collect(ch chan<- prometheus.Metric) {
	for _, m := range s.metrics {
		m.collect(ch)
	}
}
