package main

import (
	"fmt"
	"time"
)

// The console's own evaluation of the alerting rules that
// docker/prometheus/alerts.yml gives Prometheus, so that the overview
// lists the alerts that fire without one: the same names, thresholds and
// windows, on the console's history (one point per CONSOLE_HISTORY_STEP)
// and on the daemons' last answers. Where the history lacks a series the
// rule reads, the nearest one is used and named in the alert's words.
const (
	backlogFloor   = 100              // FpmqBacklogGrowing: jobs ready
	ruleWindow     = 10 * time.Minute // the rules' rate and delta windows
	waitHigh       = 60.0             // FpmqQueueWaitHigh: seconds
	retryShareHigh = 0.2              // FpmqRetryRatioHigh: failed share of attempts
	retryRateFloor = 3.0              // FpmqRetryRatioHigh: attempts per minute (0.05/s)
)

// alerts returns the alerts that fire for the route r, from its points
// (oldest first) and the daemons' answers. A rule over a window fires only
// when the history covers the window.
func alerts(r routeView, ps []point, now time.Time, step time.Duration) []string {
	var out []string
	fire := func(name, format string, args ...any) {
		out = append(out, fmt.Sprintf("alert %s: %s: ", name, r.Queue)+fmt.Sprintf(format, args...))
	}
	if r.Blocked {
		fire("FpmqBrokerBlocked", "RabbitMQ blocks publishing (a memory or disk alarm): no retry or dead-letter copy can be made")
	}
	if r.PoolWaiting > 0 && r.PoolChildren > 0 && r.PoolBusy >= r.PoolChildren {
		fire("FpmqPoolSaturated", "every php-fpm child is busy and %.0f requests wait for one", r.PoolWaiting)
	}
	window := since(ps, now.Add(-ruleWindow))
	if len(window) == 0 || window[0].At.After(now.Add(-ruleWindow+step+step/2)) {
		return out // less than the rules' window known
	}
	first, last := window[0], window[len(window)-1]
	if last.Ready != nil && first.Ready != nil && *last.Ready > backlogFloor && *last.Ready > *first.Ready {
		fire("FpmqBacklogGrowing", "%d jobs ready, %d more than 10 minutes ago", *last.Ready, *last.Ready-*first.Ready)
	}
	if last.Dead != nil && first.Dead != nil && *last.Dead > *first.Dead {
		fire("FpmqDeadLettersGrowing", "+%s in 10 minutes", plural(*last.Dead-*first.Dead, "dead letter", "dead letters"))
	}
	var done, failed float64
	waitAllHigh := true
	for _, p := range window[1:] {
		done += p.Done
		failed += p.Failed
		waitAllHigh = waitAllHigh && p.WaitP95 != nil && *p.WaitP95 > waitHigh
	}
	if n := float64(len(window) - 1); n > 0 && (done+failed)/n > retryRateFloor && failed/(done+failed) > retryShareHigh {
		fire("FpmqRetryRatioHigh", "%.0f %% of attempts failed over 10 minutes", 100*failed/(done+failed))
	}
	if waitAllHigh && len(window) > 1 {
		fire("FpmqQueueWaitHigh", "jobs waited over %.0f s (p95) before they started, for 10 minutes", waitHigh)
	}
	return out
}

// since returns the points from t on.
func since(ps []point, t time.Time) []point {
	for i, p := range ps {
		if !p.At.Before(t) {
			return ps[i:]
		}
	}
	return nil
}
