package main

import (
	"fmt"
	"io"
	"math"
	"slices"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// daemonMetrics are the figures the console takes from a daemon's
// /metrics (services/internal/metrics names them).
type daemonMetrics struct {
	Succeeded    float64 // fpmq_jobs_succeeded_total
	Retried      float64 // fpmq_jobs_retried_total
	DeadLettered float64 // fpmq_jobs_dead_lettered_total, every reason
	InFlight     float64 // fpmq_jobs_in_flight
	// PoolUp is fpmq_phpfpm_up: php-fpm's status page answered. PoolBusy
	// and PoolChildren are its active and total children.
	PoolUp       bool
	PoolBusy     float64 // fpmq_phpfpm_active_processes
	PoolChildren float64 // fpmq_phpfpm_processes
	PoolWaiting  float64 // fpmq_phpfpm_listen_queue: requests no child took yet
	Connected    bool    // fpmq_broker_connected
	Blocked      bool    // fpmq_broker_blocked: RabbitMQ's memory or disk alarm
	// Run is fpmq_worker_duration_seconds, a job's time in php-fpm; Wait
	// is fpmq_queue_wait_seconds, from its publication to its attempt.
	Run, Wait histogram
}

// histogram is a Prometheus histogram's cumulative buckets: Counts[i]
// observations were at most Bounds[i] seconds, in increasing order of
// bound (the +Inf bucket left out: Count holds every observation).
type histogram struct {
	Bounds []float64
	Counts []float64
	Count  float64
}

// parseMetrics reads the Prometheus text format. Series it does not know
// are ignored; a sum is taken over each known series' labels.
func parseMetrics(r io.Reader) (daemonMetrics, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return daemonMetrics{}, fmt.Errorf("read metrics: %w", err)
	}
	sum := func(name string) float64 {
		f := families[name]
		if f == nil {
			return 0
		}
		var total float64
		for _, m := range f.GetMetric() {
			total += value(m)
		}
		return total
	}
	return daemonMetrics{
		Succeeded:    sum("fpmq_jobs_succeeded_total"),
		Retried:      sum("fpmq_jobs_retried_total"),
		DeadLettered: sum("fpmq_jobs_dead_lettered_total"),
		InFlight:     sum("fpmq_jobs_in_flight"),
		PoolUp:       sum("fpmq_phpfpm_up") > 0,
		PoolBusy:     sum("fpmq_phpfpm_active_processes"),
		PoolChildren: sum("fpmq_phpfpm_processes"),
		PoolWaiting:  sum("fpmq_phpfpm_listen_queue"),
		Connected:    sum("fpmq_broker_connected") > 0,
		Blocked:      sum("fpmq_broker_blocked") > 0,
		Run:          histogramOf(families["fpmq_worker_duration_seconds"]),
		Wait:         histogramOf(families["fpmq_queue_wait_seconds"]),
	}, nil
}

// histogramOf sums the family's histograms, bucket by bucket; series whose
// bounds differ from the first's are left out (one daemon writes them all
// with the same bounds). A missing family gives the empty histogram.
func histogramOf(f *dto.MetricFamily) histogram {
	var h histogram
	for _, m := range f.GetMetric() {
		mh := m.GetHistogram()
		if mh == nil {
			continue
		}
		var bounds, counts []float64
		for _, b := range mh.GetBucket() {
			if math.IsInf(b.GetUpperBound(), +1) {
				continue
			}
			bounds = append(bounds, b.GetUpperBound())
			counts = append(counts, float64(b.GetCumulativeCount()))
		}
		switch {
		case h.Bounds == nil:
			h = histogram{Bounds: bounds, Counts: counts, Count: float64(mh.GetSampleCount())}
		case slices.Equal(h.Bounds, bounds):
			for i := range counts {
				h.Counts[i] += counts[i]
			}
			h.Count += float64(mh.GetSampleCount())
		}
	}
	return h
}

// value is a counter's, gauge's or untyped series' value.
func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}
