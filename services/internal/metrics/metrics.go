// Package metrics defines the daemon's Prometheus metrics. Labels have
// bounded values (outcomes, reasons, status classes), never message ids.
package metrics

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fpmq/fpmq/services/internal/outcome"
)

const namespace = "fpmq"

// Metrics holds the daemon's metrics, registered in Registry. Labels have
// bounded values: outcomes, reasons and status classes, never message ids.
// Every fpmq_* series carries the constant label queue, the daemon's job
// queue, so that the daemons of several routes can be told apart in one
// Prometheus; the Go runtime's and the process's series do not.
type Metrics struct {
	Registry *prometheus.Registry

	// labelled registers in Registry with the queue label added.
	labelled prometheus.Registerer

	received      prometheus.Counter
	succeeded     prometheus.Counter
	retried       prometheus.Counter
	delayed       prometheus.Counter
	requeued      prometheus.Counter
	alreadyDone   prometheus.Counter
	deadLettered  *prometheus.CounterVec
	malformed     prometheus.Counter
	responses     *prometheus.CounterVec
	fcgiErrors    prometheus.Counter
	fatalErrors   prometheus.Counter
	stderrDropped prometheus.Counter
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
	Paused      func() float64 // 1 when consumption is paused, for any reason
	// PausedByOperator is 1 while an operator's pause lasts.
	PausedByOperator func() float64
	Blocked          func() float64 // 1 while the broker blocks the daemon's publishing connection
	Ready            func() float64 // 1 when the daemon is ready, as /readyz says
	Reconnects       func() float64 // broker connections re-established
	// CopyFailures counts the retry and dead-letter copies the broker
	// refused, as they happen.
	CopyFailures func() float64
	// Resent counts the requests sent again on a new connection because
	// php-fpm had ended their kept connection without reading them
	// (fastcgi.Client.Resent); nil leaves the series out.
	Resent func() float64
}

// New creates and registers the metrics of the daemon consuming queue, with
// the Go runtime's and the process's own.
func New(queue string, g Gauges) *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry:    r,
		labelled:    prometheus.WrapRegistererWith(prometheus.Labels{QueueLabel: queue}, r),
		received:    counter("jobs_received_total", "Job messages taken from the queue."),
		succeeded:   counter("jobs_succeeded_total", "Jobs whose worker answered 2xx."),
		retried:     counter("jobs_retried_total", "Failed attempts sent to a retry queue."),
		delayed:     counter("jobs_delayed_total", "Jobs taken before they were due and sent to a delay queue, not run; a job counts once per delay queue it passes."),
		requeued:    counter("jobs_requeued_total", "Jobs put back without an attempt counted: php-fpm unavailable, shutdown, or a copy the broker did not take."),
		alreadyDone: counter("jobs_redelivered_done_total", "Redeliveries of jobs whose attempt had already ended here when their channel closed (an acknowledgement timeout, a lost connection): acked without running again."),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "jobs_dead_lettered_total",
			Help: "Jobs sent to the dead-letter queue, by reason.",
		}, []string{"reason"}),
		malformed: counter("jobs_malformed_total", "Messages that were not jobs (also counted as dead-lettered)."),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "worker_responses_total",
			Help: "Worker answers by HTTP status class (2xx, 3xx, 4xx, 5xx).",
		}, []string{"class"}),
		fcgiErrors:    counter("fastcgi_errors_total", "Attempts that got no answer from php-fpm: refused connections, timeouts, broken connections."),
		fatalErrors:   counter("worker_fatal_errors_total", "Attempts whose worker reported a PHP fatal error on stderr, whatever its status."),
		stderrDropped: counter("worker_stderr_dropped_messages_total", "Worker stderr messages not logged because a job wrote more than the bound."),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "jobs_in_flight", Help: "Jobs being handled now.",
		}),
		workerSeconds: histogram("worker_duration_seconds", "Time from sending a job to php-fpm to its last byte of answer."),
		latency:       histogram("job_latency_seconds", "Time from a job's publication (its timestamp) to the end of its attempt."),
		queueWait:     histogram("queue_wait_seconds", "Time from a job's publication (its timestamp) to the start of its attempt."),
	}
	for _, reason := range outcome.Reasons() {
		m.deadLettered.WithLabelValues(reason)
	}
	for _, class := range []string{"2xx", "3xx", "4xx", "5xx"} {
		m.responses.WithLabelValues(class)
	}
	m.labelled.MustRegister(
		m.received, m.succeeded, m.retried, m.delayed, m.requeued, m.alreadyDone, m.deadLettered, m.malformed,
		m.responses, m.fcgiErrors, m.fatalErrors, m.stderrDropped, m.inFlight, m.workerSeconds, m.latency, m.queueWait,
		gaugeFunc("concurrency_limit", "Jobs the daemon runs at once at most.", g.Concurrency),
		gaugeFunc("broker_connected", "1 when the daemon is connected to RabbitMQ.", g.Connected),
		gaugeFunc("consumption_paused", "1 when the daemon is connected but not consuming: paused by an operator, or because php-fpm is unavailable or cannot run the script.", g.Paused),
		gaugeFunc("consumption_paused_by_operator", "1 while an operator's pause lasts (daemon pause), connected or not.", g.PausedByOperator),
		gaugeFunc("ready", "1 when the daemon is ready to run jobs, as /readyz says.", g.Ready),
		gaugeFunc("broker_blocked", "1 while RabbitMQ blocks the daemon's publishing connection (a memory or disk alarm).", g.Blocked),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: namespace, Name: "broker_reconnects_total",
			Help: "Connections to RabbitMQ re-established after one was lost.",
		}, g.Reconnects),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: namespace, Name: "copy_publish_failures_total",
			Help: "Retry or dead-letter copies the broker did not take; each is tried again after a growing pause, without running the job again.",
		}, g.CopyFailures),
	)
	if g.Resent != nil {
		m.labelled.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: namespace, Name: "fastcgi_requests_resent_total",
			Help: "Jobs sent again at once, with no attempt counted, because php-fpm had ended their kept-alive connection without reading them (a child at pm.max_requests, an idle child stopped, a reload).",
		}, g.Resent))
	}
	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// QueueLabel is the constant label naming the daemon's job queue on its
// fpmq_* series. The fpmq_queue_* series already have a label of that name
// (each of the route's queues: job, retry, delay, dead) and register
// without it, through Registry.
const QueueLabel = "queue"

// MustRegister registers more of the daemon's collectors, with the queue
// label added to their series.
func (m *Metrics) MustRegister(cs ...prometheus.Collector) {
	m.labelled.MustRegister(cs...)
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// Started records a job taken from the queue and returns a function that
// records its end; the daemon calls it around the handling of a delivery.
func (m *Metrics) Started(published time.Time) func(outcome.Result) {
	start := time.Now()
	m.received.Inc()
	m.inFlight.Inc()
	// A job not due yet has not waited: it goes to a delay queue.
	if !published.IsZero() && !published.After(start) {
		m.queueWait.Observe(start.Sub(published).Seconds())
	}
	return func(res outcome.Result) {
		m.inFlight.Dec()
		m.Observe(res)
		if !published.IsZero() && res.Outcome != outcome.Delayed {
			m.latency.Observe(max(time.Since(published).Seconds(), 0))
		}
	}
}

// Observe records the result of one delivery.
func (m *Metrics) Observe(res outcome.Result) {
	switch res.Outcome {
	case outcome.Succeeded:
		m.succeeded.Inc()
	case outcome.Retried:
		m.retried.Inc()
	case outcome.Delayed:
		m.delayed.Inc()
	case outcome.Requeued:
		m.requeued.Inc()
	case outcome.AlreadyDone:
		m.alreadyDone.Inc()
	case outcome.DeadLettered:
		m.deadLettered.WithLabelValues(res.Reason).Inc()
		if res.Reason == outcome.ReasonMalformed {
			m.malformed.Inc()
		}
	}
	if res.Fatal {
		m.fatalErrors.Inc()
	}
	m.stderrDropped.Add(float64(res.StderrDropped))
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

// durationBuckets span a no-op job on a local pool (a fraction of a
// millisecond) to jobs of ten minutes. From 10 ms on, each decade has 11
// buckets, the closest 10 % apart just above round numbers: a quantile of
// 1-second jobs (which take a little more than 1 s) reads under 1.1 s, not
// the 2.5 s that a 1-2.5-5 series would give.
var durationBuckets = func() []float64 {
	b := []float64{.0005, .001, .0025, .005}
	for _, decade := range []float64{.01, .1, 1, 10, 100} {
		for _, m := range []float64{1, 1.1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 7.5} {
			if v := math.Round(m*decade*1e6) / 1e6; v <= 600 { // 1e6: no float noise in the le labels
				b = append(b, v)
			}
		}
	}
	return b
}()

func histogram(name, help string) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: name, Help: help, Buckets: durationBuckets,
	})
}
