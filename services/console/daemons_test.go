package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fpmq/fpmq/services/internal/admin"
	"github.com/fpmq/fpmq/services/internal/metrics"
	"github.com/fpmq/fpmq/services/internal/outcome"
)

// daemonPeer is a daemon's real admin endpoints (services/internal/admin
// and services/internal/metrics) on a test server, serving one route.
type daemonPeer struct {
	srv      *httptest.Server
	statuses atomic.Int32
	mu       sync.Mutex
	paused   string // the reason; empty when not paused
	delay    time.Duration
	jobs     func() admin.Jobs // GET /admin/jobs; nil: an empty journal
}

func newDaemonPeer(t *testing.T, queue string, succeeded int) *daemonPeer {
	t.Helper()
	p := &daemonPeer{}
	one := func() float64 { return 1 }
	m := metrics.New(queue, metrics.Gauges{Concurrency: one, Connected: one, Paused: one, PausedByOperator: one, Blocked: one, Ready: one, Reconnects: one, CopyFailures: one})
	for range succeeded {
		m.Observe(outcome.Result{Outcome: outcome.Succeeded})
	}
	m.Observe(outcome.Result{Outcome: outcome.DeadLettered, Reason: outcome.ReasonRejected})
	pause := func() admin.Pause {
		p.mu.Lock()
		defer p.mu.Unlock()
		return admin.Pause{Paused: p.paused != "", Reason: p.paused, State: "consuming"}
	}
	ops := admin.Operations{
		Pause: func(reason string) admin.Pause {
			p.mu.Lock()
			p.paused = reason
			p.mu.Unlock()
			return pause()
		},
		Resume: func() admin.Pause {
			p.mu.Lock()
			p.paused = ""
			p.mu.Unlock()
			return pause()
		},
		PauseState: pause,
		Status: func(ctx context.Context) admin.Status {
			p.statuses.Add(1)
			select {
			case <-time.After(p.delay):
			case <-ctx.Done():
			}
			return admin.Status{Routes: []admin.Route{{Queue: queue, Pause: pause(), Ready: intp(4), Dead: intp(1), SucceededPerSecond: 1}}}
		},
		Jobs: func() admin.Jobs {
			if p.jobs == nil {
				return admin.Jobs{Queue: queue}
			}
			return p.jobs()
		},
	}
	p.srv = httptest.NewServer(admin.Handler(admin.Endpoints{
		Metrics: m.Handler(), Operations: &ops, Token: "0123456789abcdef0123", Log: zerolog.Nop(),
		Health: admin.Health{Live: func() error { return nil }, Ready: func(context.Context) error { return nil }},
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func TestSnapshotReadsStatusAndMetrics(t *testing.T) {
	a, b := newDaemonPeer(t, "commands", 3), newDaemonPeer(t, "reports", 0)
	src := newDaemonSource([]string{a.srv.URL, b.srv.URL}, "0123456789abcdef0123", time.Second, time.Minute)
	snap := src.Snapshot(context.Background())
	if len(snap.Daemons) != 2 {
		t.Fatalf("%d daemons, want 2", len(snap.Daemons))
	}
	v := snap.Daemons[0]
	if v.Err != "" || v.MetricsErr != "" {
		t.Fatalf("daemon errors: %q, %q", v.Err, v.MetricsErr)
	}
	if v.Metrics.Succeeded != 3 || v.Metrics.DeadLettered != 1 || !v.Metrics.Connected {
		t.Errorf("metrics %+v, want 3 succeeded, 1 dead-lettered, connected", v.Metrics)
	}
	if q := snap.Daemons[1].Status.Routes[0].Queue; q != "reports" {
		t.Errorf("second daemon's route %q, want reports", q)
	}
	// Within CONSOLE_CACHE_TTL nobody asks the daemons again.
	src.Snapshot(context.Background())
	if n := a.statuses.Load(); n != 1 {
		t.Errorf("the daemon was asked its status %d times, want 1 (cached)", n)
	}
}

func TestSnapshotOfDaemonsThatDoNotAnswer(t *testing.T) {
	slow := newDaemonPeer(t, "commands", 0)
	slow.delay = 5 * time.Second
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	src := newDaemonSource([]string{slow.srv.URL, gone.URL}, "0123456789abcdef0123", 200*time.Millisecond, 0)
	start := time.Now()
	snap := src.Snapshot(context.Background())
	if took := time.Since(start); took > time.Second {
		t.Errorf("took %s with a 200ms deadline", took)
	}
	if snap.Daemons[0].Err != "no answer in time" || snap.Daemons[1].Err == "" {
		t.Errorf("errors %q and %q, want no answer in time and unreachable", snap.Daemons[0].Err, snap.Daemons[1].Err)
	}
	o := buildOverview(snap)
	if o.Healthy() || len(o.Unreachable) != 2 || !strings.HasPrefix(o.Summary(), "Something is wrong") {
		t.Errorf("overview %+v, want two unreachable daemons and something wrong", o)
	}
}

func TestPauseReachesTheRoutesDaemonsOnly(t *testing.T) {
	a, b, c := newDaemonPeer(t, "commands", 0), newDaemonPeer(t, "reports", 0), newDaemonPeer(t, "reports", 0)
	src := newDaemonSource([]string{a.srv.URL, b.srv.URL, c.srv.URL}, "0123456789abcdef0123", time.Second, time.Minute)
	got, err := src.Pause(context.Background(), "reports", "by alice (console)")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{b.srv.URL, c.srv.URL}; !slices.Equal(got, want) {
		t.Errorf("paused %v, want %v", got, want)
	}
	if a.paused != "" || b.paused != "by alice (console)" || c.paused != "by alice (console)" {
		t.Errorf("pauses %q %q %q, want the reports daemons only", a.paused, b.paused, c.paused)
	}
	// The next snapshot shows it at once, cache or not.
	o := buildOverview(src.Snapshot(context.Background()))
	if r := o.Routes[1]; r.Queue != "reports" || !r.Paused || r.Daemons != 2 {
		t.Errorf("reports after the pause: %+v", r)
	}
	if _, err := src.Resume(context.Background(), "reports"); err != nil || b.paused != "" {
		t.Errorf("resume: %v, reason left %q", err, b.paused)
	}
	if _, err := src.Pause(context.Background(), "nowhere", ""); err != errNoDaemon {
		t.Errorf("pause of a route no daemon serves: %v, want errNoDaemon", err)
	}
}

// TestOverviewTimeWithTenRoutes measures the overview's server time with
// ten routes, each its own daemon: cold (every daemon asked, status and
// metrics, concurrently) and warm (cached). Both are to be under 200 ms.
func TestOverviewTimeWithTenRoutes(t *testing.T) {
	var addrs []string
	for i := range 10 {
		addrs = append(addrs, newDaemonPeer(t, fmt.Sprintf("route%d", i), i).srv.URL)
	}
	src := newDaemonSource(addrs, "0123456789abcdef0123", 2*time.Second, 2*time.Second)
	s, err := newServer(context.Background(), config{SessionTTL: time.Hour, RefreshInterval: 3 * time.Second, DeadPageSize: 50, DeadScan: 100}, src, &fakeDead{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	id, _ := s.sessions.start("alice", roleOperator)
	h := s.handler()
	for _, pass := range []string{"cold", "warm"} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.AddCookie(&http.Cookie{Name: cookieName, Value: id})
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, req)
		took := time.Since(start)
		if rec.Code != http.StatusOK || strings.Count(rec.Body.String(), `id="route-route`) != 10 {
			t.Fatalf("%s overview: %d, want 200 with 10 routes", pass, rec.Code)
		}
		t.Logf("%s overview with 10 routes: %s", pass, took)
		if took > 200*time.Millisecond && !raceDetector {
			t.Errorf("%s overview took %s, want under 200 ms", pass, took)
		}
	}
}
