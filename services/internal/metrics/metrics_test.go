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

	"github.com/fpmq/fpmq/services/internal/dispatch"
)

func newMetrics() *Metrics {
	return New(Gauges{
		Concurrency: func() float64 { return 5 },
		Connected:   func() float64 { return 1 },
		Paused:      func() float64 { return 0 },
		Reconnects:  func() float64 { return 2 },
	})
}

func TestObserveCountsEachOutcome(t *testing.T) {
	m := newMetrics()
	published := time.Now().Add(-time.Second)
	for _, res := range []dispatch.Result{
		{Outcome: dispatch.Succeeded, Status: 200, Ran: true, WorkerTime: 10 * time.Millisecond},
		{Outcome: dispatch.Succeeded, Status: 204, Ran: true},
		{Outcome: dispatch.Retried, Status: 500, Ran: true},
		{Outcome: dispatch.Retried, Ran: true, Err: context.DeadlineExceeded}, // no answer
		{Outcome: dispatch.DeadLettered, Reason: dispatch.ReasonRejected, Status: 422, Ran: true},
		{Outcome: dispatch.DeadLettered, Reason: dispatch.ReasonMalformed},
		{Outcome: dispatch.Requeued, Ran: true, Err: dispatch.ErrPoolUnavailable},
	} {
		m.Started(published)(res)
	}

	for _, tc := range []struct {
		name string
		got  float64
		want float64
	}{
		{"received", testutil.ToFloat64(m.received), 7},
		{"succeeded", testutil.ToFloat64(m.succeeded), 2},
		{"retried", testutil.ToFloat64(m.retried), 2},
		{"requeued", testutil.ToFloat64(m.requeued), 1},
		{"dead-lettered rejected", testutil.ToFloat64(m.deadLettered.WithLabelValues(dispatch.ReasonRejected)), 1},
		{"dead-lettered malformed", testutil.ToFloat64(m.deadLettered.WithLabelValues(dispatch.ReasonMalformed)), 1},
		{"dead-lettered exhausted", testutil.ToFloat64(m.deadLettered.WithLabelValues(dispatch.ReasonExhausted)), 0},
		{"malformed", testutil.ToFloat64(m.malformed), 1},
		{"2xx", testutil.ToFloat64(m.responses.WithLabelValues("2xx")), 2},
		{"4xx", testutil.ToFloat64(m.responses.WithLabelValues("4xx")), 1},
		{"5xx", testutil.ToFloat64(m.responses.WithLabelValues("5xx")), 1},
		{"fastcgi errors", testutil.ToFloat64(m.fcgiErrors), 2},
		{"in flight", testutil.ToFloat64(m.inFlight), 0},
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
		"fpmq_queue_wait_seconds_count 7",
		"fpmq_job_latency_seconds_count 7",
		"fpmq_worker_duration_seconds_count 6",
		"fpmq_concurrency_limit 5",
		"fpmq_broker_connected 1",
		"fpmq_consumption_paused 0",
		"fpmq_broker_reconnects_total 2",
		`fpmq_jobs_dead_lettered_total{reason="attempts-exhausted"} 0`,
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
	done(dispatch.Result{Outcome: dispatch.Succeeded, Status: 200, Ran: true})
	if got := testutil.ToFloat64(m.inFlight); got != 0 {
		t.Errorf("in flight %g after the job, want 0", got)
	}
	// A message without a timestamp has no queue wait to observe.
	if n := strings.Count(scrape(t, m), "fpmq_queue_wait_seconds_count 0"); n != 1 {
		t.Errorf("queue wait observed for a message without timestamp")
	}
}

// statusPage is what php-fpm 8.2 answers to /status?json.
const statusPage = `{"pool":"commands","process manager":"static","start time":1764220000,"start since":120,"accepted conn":1234,"listen queue":3,"max listen queue":7,"listen queue len":511,"idle processes":1,"active processes":4,"total processes":5,"max active processes":5,"max children reached":9,"slow requests":0}`

func TestPoolCollector(t *testing.T) {
	m := newMetrics()
	m.Registry.MustRegister(NewPoolCollector(func(context.Context) (PoolStatus, error) {
		return ParsePoolStatus([]byte(statusPage))
	}, time.Second))
	text := scrape(t, m)
	for _, want := range []string{
		"fpmq_phpfpm_up 1",
		"fpmq_phpfpm_active_processes 4",
		"fpmq_phpfpm_idle_processes 1",
		"fpmq_phpfpm_processes 5",
		"fpmq_phpfpm_listen_queue 3",
		"fpmq_phpfpm_listen_queue_max 7",
		"fpmq_phpfpm_accepted_connections_total 1234",
		"fpmq_phpfpm_max_children_reached_total 9",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}

	down := newMetrics()
	down.Registry.MustRegister(NewPoolCollector(func(context.Context) (PoolStatus, error) {
		return PoolStatus{}, errors.New("connection refused")
	}, time.Second))
	text = scrape(t, down)
	if !strings.Contains(text, "fpmq_phpfpm_up 0") || strings.Contains(text, "fpmq_phpfpm_active_processes") {
		t.Errorf("an unreachable pool should give up 0 and no figures:\n%s", text)
	}
}

func TestParsePoolStatusRejectsGarbage(t *testing.T) {
	if _, err := ParsePoolStatus([]byte("pool: commands\n")); err == nil {
		t.Error("text status page accepted as JSON")
	}
}

func TestHealthEndpoints(t *testing.T) {
	var ready error
	h := Health{
		Live:  func() error { return nil },
		Ready: func(context.Context) error { return ready },
	}
	srv := httptest.NewServer(Handler(newMetrics(), h, false))
	defer srv.Close()

	if err := Check(context.Background(), srv.URL+"/healthz"); err != nil {
		t.Errorf("healthz: %v", err)
	}
	if err := Check(context.Background(), srv.URL+"/readyz"); err != nil {
		t.Errorf("readyz while ready: %v", err)
	}
	ready = errors.New("php-fpm: connection refused")
	err := Check(context.Background(), srv.URL+"/readyz")
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("readyz while unready: %v", err)
	}
	if err := Check(context.Background(), srv.URL+"/debug/pprof/"); err == nil {
		t.Error("pprof served although off")
	}

	withPprof := httptest.NewServer(Handler(newMetrics(), h, true))
	defer withPprof.Close()
	if err := Check(context.Background(), withPprof.URL+"/debug/pprof/"); err != nil {
		t.Errorf("pprof on: %v", err)
	}
}

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	srv := httptest.NewServer(Handler(m, Health{Live: func() error { return nil }, Ready: func(context.Context) error { return nil }}, false))
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
