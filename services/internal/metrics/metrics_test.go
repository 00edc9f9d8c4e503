package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/fpmq/fpmq/services/internal/outcome"
	"github.com/fpmq/fpmq/services/internal/phpfpm"
	"github.com/fpmq/fpmq/services/internal/queuestat"
)

func newMetrics() *Metrics {
	return New("commands", Gauges{
		Concurrency:      func() float64 { return 5 },
		Connected:        func() float64 { return 1 },
		Paused:           func() float64 { return 0 },
		PausedByOperator: func() float64 { return 1 },
		Blocked:          func() float64 { return 0 },
		Ready:            func() float64 { return 1 },
		Reconnects:       func() float64 { return 2 },
		CopyFailures:     func() float64 { return 4 },
	})
}

func TestObserveCountsEachOutcome(t *testing.T) {
	m := newMetrics()
	published := time.Now().Add(-time.Second)
	for _, res := range []outcome.Result{
		{Outcome: outcome.Succeeded, Status: 200, Ran: true, WorkerTime: 10 * time.Millisecond},
		{Outcome: outcome.Succeeded, Status: 204, Ran: true},
		{Outcome: outcome.Retried, Status: 500, Ran: true},
		{Outcome: outcome.Retried, Ran: true, Err: context.DeadlineExceeded}, // no answer
		{Outcome: outcome.DeadLettered, Reason: outcome.ReasonRejected, Status: 422, Ran: true},
		{Outcome: outcome.DeadLettered, Reason: outcome.ReasonMalformed},
		{Outcome: outcome.Requeued, Ran: true, Err: outcome.ErrPoolUnavailable},
		{Outcome: outcome.Retried, Status: 200, Ran: true, Fatal: true, StderrDropped: 3, CopyFailures: 2},
		{Outcome: outcome.Delayed},
	} {
		m.Started(published)(res)
	}

	for _, tc := range []struct {
		name string
		got  float64
		want float64
	}{
		{"received", testutil.ToFloat64(m.received), 9},
		{"delayed", testutil.ToFloat64(m.delayed), 1},
		{"succeeded", testutil.ToFloat64(m.succeeded), 2},
		{"retried", testutil.ToFloat64(m.retried), 3},
		{"requeued", testutil.ToFloat64(m.requeued), 1},
		{"dead-lettered rejected", testutil.ToFloat64(m.deadLettered.WithLabelValues(outcome.ReasonRejected)), 1},
		{"dead-lettered malformed", testutil.ToFloat64(m.deadLettered.WithLabelValues(outcome.ReasonMalformed)), 1},
		{"dead-lettered exhausted", testutil.ToFloat64(m.deadLettered.WithLabelValues(outcome.ReasonExhausted)), 0},
		{"malformed", testutil.ToFloat64(m.malformed), 1},
		{"2xx", testutil.ToFloat64(m.responses.WithLabelValues("2xx")), 3},
		{"4xx", testutil.ToFloat64(m.responses.WithLabelValues("4xx")), 1},
		{"5xx", testutil.ToFloat64(m.responses.WithLabelValues("5xx")), 1},
		{"fastcgi errors", testutil.ToFloat64(m.fcgiErrors), 2},
		{"in flight", testutil.ToFloat64(m.inFlight), 0},
		{"fatal errors", testutil.ToFloat64(m.fatalErrors), 1},
		{"stderr dropped", testutil.ToFloat64(m.stderrDropped), 3},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %g, want %g", tc.name, tc.got, tc.want)
		}
	}
	if n := testutil.CollectAndCount(m.workerSeconds); n != 1 {
		t.Errorf("worker duration histogram has %d series", n)
	}
	text := scrape(t, m)
	for _, want := range []string{
		`fpmq_queue_wait_seconds_count{queue="commands"} 9`,
		`fpmq_jobs_delayed_total{queue="commands"} 1`,
		`fpmq_job_latency_seconds_count{queue="commands"} 8`,
		`fpmq_worker_duration_seconds_count{queue="commands"} 7`,
		`fpmq_concurrency_limit{queue="commands"} 5`,
		`fpmq_broker_connected{queue="commands"} 1`,
		`fpmq_consumption_paused{queue="commands"} 0`,
		`fpmq_consumption_paused_by_operator{queue="commands"} 1`,
		`fpmq_broker_blocked{queue="commands"} 0`,
		`fpmq_ready{queue="commands"} 1`,
		`fpmq_broker_reconnects_total{queue="commands"} 2`,
		`fpmq_copy_publish_failures_total{queue="commands"} 4`,
		`fpmq_jobs_dead_lettered_total{queue="commands",reason="attempts-exhausted"} 0`,
		`fpmq_jobs_dead_lettered_total{queue="commands",reason="failed"} 0`,
		`fpmq_worker_responses_total{class="4xx",queue="commands"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

func TestInFlight(t *testing.T) {
	m := newMetrics()
	done := m.Started(time.Time{})
	if got := testutil.ToFloat64(m.inFlight); got != 1 {
		t.Errorf("in flight %g during a job, want 1", got)
	}
	done(outcome.Result{Outcome: outcome.Succeeded, Status: 200, Ran: true})
	if got := testutil.ToFloat64(m.inFlight); got != 0 {
		t.Errorf("in flight %g after the job, want 0", got)
	}
	// A message without a timestamp has no queue wait to observe.
	if n := strings.Count(scrape(t, m), `fpmq_queue_wait_seconds_count{queue="commands"} 0`); n != 1 {
		t.Errorf("queue wait observed for a message without timestamp")
	}
}

// The Go runtime's series are the process's, not a route's: they stay
// unlabelled, while every fpmq_* series names the daemon's job queue.
func TestSeriesNameTheJobQueue(t *testing.T) {
	m := New("reports", Gauges{
		Concurrency: func() float64 { return 2 }, Connected: func() float64 { return 1 },
		Paused: func() float64 { return 0 }, PausedByOperator: func() float64 { return 0 },
		Blocked: func() float64 { return 0 }, Ready: func() float64 { return 1 },
		Reconnects: func() float64 { return 0 }, CopyFailures: func() float64 { return 0 },
	})
	for _, line := range strings.Split(scrape(t, m), "\n") {
		switch {
		case strings.HasPrefix(line, "fpmq_") && !strings.Contains(line, `queue="reports"`):
			t.Errorf("series without the job queue's label: %s", line)
		case strings.HasPrefix(line, "go_") && strings.Contains(line, "queue="):
			t.Errorf("runtime series with a queue label: %s", line)
		}
	}
	if !strings.Contains(scrape(t, m), `fpmq_concurrency_limit{queue="reports"} 2`) {
		t.Error("no concurrency limit for the reports queue")
	}
}

// statusPage is what php-fpm 8.2 answers to /status?json.
const statusPage = `{"pool":"commands","process manager":"static","start time":1764220000,"start since":120,"accepted conn":1234,"listen queue":3,"max listen queue":7,"listen queue len":511,"idle processes":1,"active processes":4,"total processes":5,"max active processes":5,"max children reached":9,"slow requests":0}`

func TestPoolCollector(t *testing.T) {
	m := newMetrics()
	m.MustRegister(NewPoolCollector(func(context.Context) (phpfpm.Status, error) {
		return phpfpm.ParseStatus([]byte(statusPage))
	}, time.Second))
	text := scrape(t, m)
	for _, want := range []string{
		`fpmq_phpfpm_up{queue="commands"} 1`,
		`fpmq_phpfpm_active_processes{queue="commands"} 4`,
		`fpmq_phpfpm_idle_processes{queue="commands"} 1`,
		`fpmq_phpfpm_processes{queue="commands"} 5`,
		`fpmq_phpfpm_listen_queue{queue="commands"} 3`,
		`fpmq_phpfpm_listen_queue_max{queue="commands"} 7`,
		`fpmq_phpfpm_accepted_connections_total{queue="commands"} 1234`,
		`fpmq_phpfpm_max_children_reached_total{queue="commands"} 9`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}

	down := newMetrics()
	down.MustRegister(NewPoolCollector(func(context.Context) (phpfpm.Status, error) {
		return phpfpm.Status{}, errors.New("connection refused")
	}, time.Second))
	text = scrape(t, down)
	if !strings.Contains(text, `fpmq_phpfpm_up{queue="commands"} 0`) || strings.Contains(text, "fpmq_phpfpm_active_processes") {
		t.Errorf("an unreachable pool should give up 0 and no figures:\n%s", text)
	}
}

func TestDurationBucketsResolveWholeSeconds(t *testing.T) {
	m := newMetrics()
	for range 100 {
		m.Observe(outcome.Result{Outcome: outcome.Succeeded, Status: 200, Ran: true, WorkerTime: 1003 * time.Millisecond})
	}
	var metric dto.Metric
	if err := m.workerSeconds.Write(&metric); err != nil {
		t.Fatal(err)
	}
	// The bucket that holds 1.003 s must end within 10 % of it.
	for _, b := range metric.GetHistogram().GetBucket() {
		if b.GetCumulativeCount() == 100 {
			if ub := b.GetUpperBound(); ub > 1.003*1.1 {
				t.Errorf("1.003 s jobs fall in a bucket ending at %g s", ub)
			}
			break
		}
	}
}

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestQueueCollector(t *testing.T) {
	m := newMetrics()
	var stats []queuestat.Stat
	m.Registry.MustRegister(NewQueueCollector(func() ([]queuestat.Stat, time.Time) { return stats, time.Now() }))
	if text := scrape(t, m); strings.Contains(text, "fpmq_queue_messages_ready{") {
		t.Errorf("figures reported before any reading:\n%s", text)
	}
	stats = []queuestat.Stat{
		{Queue: queuestat.Queue{Name: "commands", Role: queuestat.RoleJob}, Ready: 12, Consumers: 2},
		{Queue: queuestat.Queue{Name: "commands.dead", Role: queuestat.RoleDead}, Ready: 3},
	}
	text := scrape(t, m)
	for _, want := range []string{
		`fpmq_queue_messages_ready{queue="commands",role="job"} 12`,
		`fpmq_queue_consumers{queue="commands",role="job"} 2`,
		`fpmq_queue_messages_ready{queue="commands.dead",role="dead"} 3`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}
