package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestSpanCollector(t *testing.T) {
	counts := SpanCounts{Exported: 7, QueueFull: 3, ExportFailed: 2}
	r := prometheus.NewRegistry()
	r.MustRegister(NewSpanCollector(func() SpanCounts { return counts }))
	want := `
# HELP fpmq_trace_spans_exported_total Trace spans the OTLP receiver took.
# TYPE fpmq_trace_spans_exported_total counter
fpmq_trace_spans_exported_total 7
`
	if err := testutil.GatherAndCompare(r, strings.NewReader(want), "fpmq_trace_spans_exported_total"); err != nil {
		t.Error(err)
	}
	for reason, n := range map[string]float64{"queue_full": 3, "export_failed": 2} {
		var got float64
		families, _ := r.Gather()
		for _, f := range families {
			for _, m := range f.GetMetric() {
				if f.GetName() == "fpmq_trace_spans_dropped_total" && m.GetLabel()[0].GetValue() == reason {
					got = m.GetCounter().GetValue()
				}
			}
		}
		if got != n {
			t.Errorf("dropped{reason=%q} = %v, want %v", reason, got, n)
		}
	}
}
