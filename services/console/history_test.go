package main

import (
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fpmq/fpmq/services/internal/admin"
	"github.com/fpmq/fpmq/services/internal/metrics"
	"github.com/fpmq/fpmq/services/internal/outcome"
)

// buckets are the bounds of the histograms in these tests, in seconds.
var buckets = []float64{0.1, 0.5, 1}

// daemonAt is one daemon's answer serving queue, with its counters.
func daemonAt(addr, queue string, succeeded, failed float64, run []float64, ready int) daemonView {
	return daemonView{
		Addr:   addr,
		Status: admin.Status{Routes: []admin.Route{{Queue: queue, Ready: &ready}}},
		Metrics: daemonMetrics{
			Succeeded: succeeded, Retried: failed,
			Run: histogram{Bounds: buckets, Counts: run, Count: run[len(run)-1]},
		},
	}
}

func near(got *float64, want float64) bool {
	return got != nil && math.Abs(*got-want) < 1e-9
}

func TestHistoryRatesAndQuantilesFromCounters(t *testing.T) {
	h := newHistory(time.Minute, time.Hour, "", zerolog.Nop())
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	h.record(snapshot{At: t0, Daemons: []daemonView{daemonAt("a", "commands", 100, 4, []float64{5, 5, 5}, 9)}})
	if ps := h.points("commands", time.Time{}); len(ps) != 0 {
		t.Fatalf("a first sample gave points %+v: it has nothing to subtract", ps)
	}
	// Two minutes later: 60 more done, 6 more failed, 20 more runs: 10 up
	// to 0.1 s, 10 between 0.1 and 0.5 s.
	h.record(snapshot{At: t0.Add(2 * time.Minute), Daemons: []daemonView{daemonAt("a", "commands", 160, 10, []float64{15, 25, 25}, 3)}})
	ps := h.points("commands", time.Time{})
	if len(ps) != 1 {
		t.Fatalf("points %+v, want 1", ps)
	}
	p := ps[0]
	if p.Done != 30 || p.Failed != 3 {
		t.Errorf("done %v, failed %v per minute, want 30 and 3", p.Done, p.Failed)
	}
	// p50: rank 10 of 20, the end of the first bucket: 0.1 s. p95: rank
	// 19, 9 of the second bucket's 10: 0.1 + 0.4 × 0.9 = 0.46 s.
	if !near(p.RunP50, 0.1) || !near(p.RunP95, 0.46) {
		t.Errorf("run p50 %v, p95 %v, want 0.1 and 0.46", deref(p.RunP50), deref(p.RunP95))
	}
	if p.WaitP50 != nil {
		t.Errorf("wait p50 %v with no wait observed, want none", *p.WaitP50)
	}
	if p.Ready == nil || *p.Ready != 3 {
		t.Errorf("ready %v, want 3", p.Ready)
	}
}

func deref(v *float64) any {
	if v == nil {
		return nil
	}
	return *v
}

func TestHistorySumsDaemonsAndSurvivesARestartOfOne(t *testing.T) {
	h := newHistory(time.Minute, time.Hour, "", zerolog.Nop())
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	h.record(snapshot{At: t0, Daemons: []daemonView{
		daemonAt("a", "commands", 100, 0, []float64{0, 0, 0}, 0),
		daemonAt("b", "commands", 500, 0, []float64{0, 0, 0}, 0),
	}})
	// b restarted: its counter starts again from 0 and counts 20.
	h.record(snapshot{At: t0.Add(time.Minute), Daemons: []daemonView{
		daemonAt("a", "commands", 110, 0, []float64{0, 0, 0}, 0),
		daemonAt("b", "commands", 20, 0, []float64{0, 0, 0}, 0),
	}})
	ps := h.points("commands", time.Time{})
	if len(ps) != 1 || ps[0].Done != 30 {
		t.Fatalf("points %+v, want one of 30 done per minute (10 + 20 since the restart)", ps)
	}
	if ps[0].RunP50 != nil {
		t.Errorf("run p50 %v with no run, want none", *ps[0].RunP50)
	}
}

func TestHistoryKeepsOnlyItsWindow(t *testing.T) {
	h := newHistory(time.Minute, time.Hour, "", zerolog.Nop())
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for i := range 90 {
		h.record(snapshot{At: t0.Add(time.Duration(i) * time.Minute), Daemons: []daemonView{daemonAt("a", "commands", float64(i), 0, []float64{0, 0, 0}, 0)}})
	}
	ps := h.points("commands", time.Time{})
	if len(ps) != 61 || !ps[0].At.Equal(t0.Add(29*time.Minute)) {
		t.Fatalf("%d points from %s, want the last hour's 61 from %s", len(ps), ps[0].At, t0.Add(29*time.Minute))
	}
	if got := h.points("commands", t0.Add(80*time.Minute)); len(got) != 10 {
		t.Errorf("%d points since minute 80, want 10", len(got))
	}
}

func TestHistoryOutlivesARestart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "history.json")
	h := newHistory(time.Minute, time.Hour, file, zerolog.Nop())
	now := time.Now().Truncate(time.Second)
	for i := range 3 {
		h.record(snapshot{At: now.Add(time.Duration(i-3) * time.Minute), Daemons: []daemonView{daemonAt("a", "reports", float64(10*i), 0, []float64{1, 2, 2}, i)}})
	}
	if err := h.save(); err != nil {
		t.Fatal(err)
	}
	again := newHistory(time.Minute, time.Hour, file, zerolog.Nop())
	if err := again.load(now); err != nil {
		t.Fatal(err)
	}
	got := again.points("reports", time.Time{})
	if len(got) != 2 || got[1].Done != 10 || *got[1].Ready != 2 || !got[1].At.Equal(now.Add(-time.Minute)) {
		t.Fatalf("after a restart: %+v, want the 2 points saved", got)
	}
	// Points older than the keep are dropped on load.
	later := newHistory(time.Minute, time.Hour, file, zerolog.Nop())
	if err := later.load(now.Add(time.Hour - 90*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := later.points("reports", time.Time{}); len(got) != 1 {
		t.Errorf("loaded 58.5 minutes later: %d points, want 1", len(got))
	}
}

func TestHistoryFileThatIsNotAHistory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "history.json")
	if err := os.WriteFile(file, []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHistory(time.Minute, time.Hour, file, zerolog.Nop())
	err := h.load(time.Now())
	if err == nil || !strings.Contains(err.Error(), "CONSOLE_HISTORY_FILE") {
		t.Fatalf("load: %v, want an error naming CONSOLE_HISTORY_FILE", err)
	}
	if len(h.queues()) != 0 {
		t.Errorf("routes %v from a bad file, want none", h.queues())
	}
	// Missing is empty, and not an error.
	if err := newHistory(time.Minute, time.Hour, file+".missing", zerolog.Nop()).load(time.Now()); err != nil {
		t.Errorf("a missing file: %v, want no error", err)
	}
}

func TestQuantilePastTheLastBound(t *testing.T) {
	h := histogram{Bounds: buckets, Counts: []float64{0, 0, 1}, Count: 4}
	if q := h.quantile(0.95); !near(q, 1) {
		t.Errorf("p95 with most observations above 1 s: %v, want the highest bound, 1", deref(q))
	}
	if q := (histogram{}).quantile(0.5); q != nil {
		t.Errorf("p50 of nothing: %v, want none", *q)
	}
}

func TestParseMetricsReadsTheDaemonsHistograms(t *testing.T) {
	one := func() float64 { return 1 }
	m := metrics.New("commands", metrics.Gauges{Concurrency: one, Connected: one, Paused: one, PausedByOperator: one, Blocked: one, Ready: one, Reconnects: one, CopyFailures: one})
	for _, d := range []time.Duration{3 * time.Millisecond, 40 * time.Millisecond, 2 * time.Second} {
		m.Observe(outcome.Result{Outcome: outcome.Succeeded, Ran: true, WorkerTime: d})
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	got, err := parseMetrics(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got.Run.Count != 3 || len(got.Run.Bounds) == 0 || len(got.Run.Bounds) != len(got.Run.Counts) {
		t.Fatalf("run histogram %+v, want 3 observations in buckets", got.Run)
	}
	if q := got.Run.quantile(0.5); q == nil || *q < 0.01 || *q > 0.05 {
		t.Errorf("p50 %v of 3 ms, 40 ms and 2 s: want the 40 ms bucket's range", deref(q))
	}
}
