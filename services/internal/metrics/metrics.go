// Package metrics defines the daemon's Prometheus metrics and serves them,
// with its health endpoints, over HTTP.
package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fpmq/fpmq/services/internal/dispatch"
)

const namespace = "fpmq"

// Metrics holds the daemon's metrics, registered in Registry. Labels have
// bounded values: outcomes, reasons and status classes, never message ids.
type Metrics struct {
	Registry *prometheus.Registry

	received      prometheus.Counter
	succeeded     prometheus.Counter
	retried       prometheus.Counter
	requeued      prometheus.Counter
	deadLettered  *prometheus.CounterVec
	malformed     prometheus.Counter
	responses     *prometheus.CounterVec
	fcgiErrors    prometheus.Counter
	inFlight      prometheus.Gauge
	workerSeconds prometheus.Histogram
	latency       prometheus.Histogram
	queueWait     prometheus.Histogram
}

// Gauges are read at scrape time from the parts of the daemon that own the
// values; New takes them as functions.
type Gauges struct {
	Concurrency func() float64 // the limit of jobs run at once
	Connected   func() float64 // 1 when connected to the broker
	Paused      func() float64 // 1 when consumption is paused for php-fpm
	Reconnects  func() float64 // broker connections re-established
}

// New creates and registers the metrics, with the Go runtime's and the
// process's own.
func New(g Gauges) *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry:  r,
		received:  counter("jobs_received_total", "Job messages taken from the queue."),
		succeeded: counter("jobs_succeeded_total", "Jobs whose worker answered 2xx."),
		retried:   counter("jobs_retried_total", "Failed attempts sent to a retry queue."),
		requeued:  counter("jobs_requeued_total", "Jobs put back without an attempt counted: php-fpm unavailable, shutdown, or a copy the broker did not take."),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "jobs_dead_lettered_total",
			Help: "Jobs sent to the dead-letter queue, by reason.",
		}, []string{"reason"}),
		malformed: counter("jobs_malformed_total", "Messages that were not jobs (also counted as dead-lettered)."),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "worker_responses_total",
			Help: "Worker answers by HTTP status class (2xx, 3xx, 4xx, 5xx).",
		}, []string{"class"}),
		fcgiErrors: counter("fastcgi_errors_total", "Attempts that got no answer from php-fpm: refused connections, timeouts, broken connections."),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "jobs_in_flight", Help: "Jobs being handled now.",
		}),
		workerSeconds: histogram("worker_duration_seconds", "Time from sending a job to php-fpm to its last byte of answer."),
		latency:       histogram("job_latency_seconds", "Time from a job's publication (its timestamp) to the end of its attempt."),
		queueWait:     histogram("queue_wait_seconds", "Time from a job's publication (its timestamp) to the start of its attempt."),
	}
	for _, reason := range []string{dispatch.ReasonMalformed, dispatch.ReasonTooLarge, dispatch.ReasonRejected, dispatch.ReasonExhausted, dispatch.ReasonPanic} {
		m.deadLettered.WithLabelValues(reason)
	}
	for _, class := range []string{"2xx", "3xx", "4xx", "5xx"} {
		m.responses.WithLabelValues(class)
	}
	r.MustRegister(
		m.received, m.succeeded, m.retried, m.requeued, m.deadLettered, m.malformed,
		m.responses, m.fcgiErrors, m.inFlight, m.workerSeconds, m.latency, m.queueWait,
		gaugeFunc("concurrency_limit", "Jobs the daemon runs at once at most.", g.Concurrency),
		gaugeFunc("broker_connected", "1 when the daemon is connected to RabbitMQ.", g.Connected),
		gaugeFunc("consumption_paused", "1 when consumption is paused because php-fpm is unavailable.", g.Paused),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: namespace, Name: "broker_reconnects_total",
			Help: "Connections to RabbitMQ re-established after one was lost.",
		}, g.Reconnects),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Started records a job taken from the queue and returns a function that
// records its end; the daemon calls it around dispatch.Handle.
func (m *Metrics) Started(published time.Time) func(dispatch.Result) {
	start := time.Now()
	m.received.Inc()
	m.inFlight.Inc()
	if !published.IsZero() {
		m.queueWait.Observe(max(start.Sub(published).Seconds(), 0))
	}
	return func(res dispatch.Result) {
		m.inFlight.Dec()
		m.Observe(res)
		if !published.IsZero() {
			m.latency.Observe(max(time.Since(published).Seconds(), 0))
		}
	}
}

// Observe records the result of one delivery.
func (m *Metrics) Observe(res dispatch.Result) {
	switch res.Outcome {
	case dispatch.Succeeded:
		m.succeeded.Inc()
	case dispatch.Retried:
		m.retried.Inc()
	case dispatch.Requeued:
		m.requeued.Inc()
	case dispatch.DeadLettered:
		m.deadLettered.WithLabelValues(res.Reason).Inc()
		if res.Reason == dispatch.ReasonMalformed {
			m.malformed.Inc()
		}
	}
	if res.Status != 0 {
		m.responses.WithLabelValues(strconv.Itoa(res.Status/100) + "xx").Inc()
	}
	if res.Ran {
		m.workerSeconds.Observe(res.WorkerTime.Seconds())
		if res.Status == 0 {
			m.fcgiErrors.Inc()
		}
	}
}

func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help})
}

func gaugeFunc(name, help string, f func() float64) prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, f)
}

// histogram buckets span a no-op job on a local pool (a fraction of a
// millisecond) to jobs of minutes.
func histogram(name, help string) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: name, Help: help,
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
	})
}
