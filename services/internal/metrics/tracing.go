package metrics

import "github.com/prometheus/client_golang/prometheus"

// SpanCounts are what became of the daemon's trace spans so far (see
// tracing.SpanCounts).
type SpanCounts struct {
	Exported     int64 // taken by the OTLP receiver
	QueueFull    int64 // dropped: the export queue was full
	ExportFailed int64 // dropped: their export failed or timed out
}

// spanCollector reports SpanCounts, read at scrape time.
type spanCollector struct {
	counts            func() SpanCounts
	exported, dropped *prometheus.Desc
}

// NewSpanCollector returns a collector of fpmq_trace_spans_exported_total
// and fpmq_trace_spans_dropped_total{reason} (queue_full,
// export_failed), read from counts at each scrape. They stay 0 while
// tracing is off.
func NewSpanCollector(counts func() SpanCounts) prometheus.Collector {
	return &spanCollector{
		counts: counts,
		exported: prometheus.NewDesc(namespace+"_trace_spans_exported_total",
			"Trace spans the OTLP receiver took.", nil, nil),
		dropped: prometheus.NewDesc(namespace+"_trace_spans_dropped_total",
			"Trace spans dropped, never slowing a job: queue_full when OTEL_BSP_MAX_QUEUE_SIZE spans already waited for the exporter, export_failed when the receiver did not take them within OTEL_BSP_EXPORT_TIMEOUT.", []string{"reason"}, nil),
	}
}

func (c *spanCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.exported
	ch <- c.dropped
}

func (c *spanCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.counts()
	ch <- prometheus.MustNewConstMetric(c.exported, prometheus.CounterValue, float64(n.Exported))
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(n.QueueFull), "queue_full")
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(n.ExportFailed), "export_failed")
}
