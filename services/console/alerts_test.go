package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// pointsOver returns a point per minute over the last minutes, the
// figures of minute i from f.
func pointsOver(now time.Time, minutes int, f func(i int) point) []point {
	var ps []point
	for i := 0; i <= minutes; i++ {
		p := f(i)
		p.At = now.Add(time.Duration(i-minutes) * time.Minute)
		ps = append(ps, p)
	}
	return ps
}

func names(alerts []string) []string {
	var out []string
	for _, a := range alerts {
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "alert "), ":")
		out = append(out, name)
	}
	return out
}

func TestAlertsFireOnTheRulesConditions(t *testing.T) {
	now := time.Now()
	wait := 90.0
	ps := pointsOver(now, 12, func(i int) point {
		return point{Done: 5, Failed: 5, Ready: intp(50 + 10*i), Dead: intp(i / 4), WaitP95: &wait}
	})
	got := alerts(routeView{Queue: "commands"}, ps, now, time.Minute)
	want := []string{"FpmqBacklogGrowing", "FpmqDeadLettersGrowing", "FpmqRetryRatioHigh", "FpmqQueueWaitHigh"}
	if !slices.Equal(names(got), want) {
		t.Fatalf("alerts %q, want %v", got, want)
	}
	if !strings.Contains(got[0], "commands: 170 jobs ready, 100 more than 10 minutes ago") {
		t.Errorf("backlog alert: %q", got[0])
	}
}

func TestAlertsStaySilentWhenAllIsWell(t *testing.T) {
	now := time.Now()
	wait := 0.5
	ps := pointsOver(now, 12, func(i int) point {
		// A big but shrinking backlog, 1 failure in 20, short waits.
		return point{Done: 19, Failed: 1, Ready: intp(1000 - i), Dead: intp(3), WaitP95: &wait}
	})
	if got := alerts(routeView{Queue: "commands"}, ps, now, time.Minute); len(got) != 0 {
		t.Errorf("alerts %q on a healthy route", got)
	}
	// Few attempts: a high failed share is no alert under 3 a minute.
	ps = pointsOver(now, 12, func(int) point { return point{Failed: 1} })
	if got := alerts(routeView{Queue: "commands"}, ps, now, time.Minute); len(got) != 0 {
		t.Errorf("alerts %q with 1 attempt a minute", got)
	}
}

func TestAlertsNeedTheirWindowOfHistory(t *testing.T) {
	now := time.Now()
	ps := pointsOver(now, 5, func(i int) point { return point{Done: 1, Failed: 9, Ready: intp(500 + 100*i), Dead: intp(i)} })
	if got := alerts(routeView{Queue: "commands"}, ps, now, time.Minute); len(got) != 0 {
		t.Errorf("alerts %q from 5 minutes of history, want none before 10", got)
	}
}

func TestAlertsFromTheDaemonsAnswers(t *testing.T) {
	r := routeView{Queue: "reports", Blocked: true, PoolBusy: 4, PoolChildren: 4, PoolWaiting: 2}
	got := alerts(r, nil, time.Now(), time.Minute)
	if !slices.Equal(names(got), []string{"FpmqBrokerBlocked", "FpmqPoolSaturated"}) {
		t.Errorf("alerts %q, want the broker blocked and the pool saturated", got)
	}
	r.PoolWaiting = 0 // all busy, nobody waiting: not saturated
	if got := alerts(r, nil, time.Now(), time.Minute); slices.Contains(names(got), "FpmqPoolSaturated") {
		t.Errorf("alerts %q: a busy pool with nothing waiting is not saturated", got)
	}
}

func TestOverviewListsTheAlerts(t *testing.T) {
	tc := newTestConsole(t)
	tc.daemons.mu.Lock()
	tc.daemons.snap.Daemons[0].Metrics.Blocked = true
	tc.daemons.mu.Unlock()
	c, _ := tc.signIn("victor", viewerPassword)
	_, body := tc.get(c, "/")
	if !strings.Contains(body, "alert FpmqBrokerBlocked: commands: RabbitMQ blocks publishing") {
		t.Errorf("the overview does not list the alert:\n%s", body)
	}
}

func TestOldestAge(t *testing.T) {
	for _, tt := range []struct {
		r    routeView
		want string
	}{
		{routeView{Ready: intp(0)}, "none"},
		{routeView{Ready: intp(3)}, "n/a"}, // a quorum queue: RabbitMQ does not say
		{routeView{Ready: intp(3), Oldest: timeNow().Add(-90 * time.Second)}, "1m30s"},
	} {
		if got := tt.r.OldestAge(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.r, got, tt.want)
		}
	}
}
