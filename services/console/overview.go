package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/fpmq/fpmq/services/internal/admin"
)

// routeView is one route as the overview shows it: the figures of every
// daemon that serves it, together.
type routeView struct {
	Queue string
	// Daemons counts the daemons that answered and serve the route;
	// Connected, those of them connected to RabbitMQ.
	Daemons, Connected int
	// DonePerMinute and FailedPerMinute are the daemons' own rates over
	// their last minute, summed: jobs succeeded, and attempts failed
	// (retried or dead-lettered).
	DonePerMinute, FailedPerMinute float64
	// RabbitMQ's figures, nil when no daemon could read them: jobs waiting
	// in the job queue, in the retry queues, in the delay queues, and dead.
	Ready, Retry, Delayed, Dead *int
	Running                     int64 // jobs being run now, over the daemons
	// PoolBusy and PoolChildren are php-fpm's busy and total children,
	// summed over the daemons whose metrics answered (PoolKnown).
	PoolBusy, PoolChildren float64
	PoolKnown              bool
	// PoolWaiting is requests waiting for a free php-fpm child; Blocked
	// is true while RabbitMQ blocks a daemon's publishing.
	PoolWaiting float64
	Blocked     bool
	// Oldest is when the job at the head of the job queue was published
	// (RabbitMQ's head_message_timestamp); zero when unknown.
	Oldest time.Time
	// Paused is true while an operator's pause lasts on any daemon of
	// the route, with that daemon's reason and time.
	Paused      bool
	PauseReason string
	PausedSince time.Time
	// PoolPause says why a daemon pauses for php-fpm, if one does.
	PoolPause string
	Problems  []string
}

// State is the route's state in a few words.
func (r routeView) State() string {
	switch {
	case r.Paused:
		return "paused by operator"
	case r.PoolPause != "":
		return "paused: php-fpm"
	case r.Connected < r.Daemons:
		return "connecting"
	}
	return "consuming"
}

// overview is the whole Overview page's data.
type overview struct {
	At          time.Time
	Took        time.Duration // asking the daemons, when not cached
	Routes      []routeView
	Unreachable []daemonView // daemons whose status did not come
	Problems    []string     // everything that is wrong, the routes' included
}

// Healthy reports whether nothing is wrong.
func (o overview) Healthy() bool { return len(o.Problems) == 0 }

// Summary is the one line that says whether anything is wrong.
func (o overview) Summary() string {
	switch n := len(o.Problems); {
	case len(o.Routes) == 0 && len(o.Unreachable) == 0:
		return "No daemon configured (CONSOLE_DAEMONS)"
	case n == 0:
		return "All well"
	case n == 1:
		return "Something is wrong: 1 problem"
	default:
		return fmt.Sprintf("Something is wrong: %d problems", n)
	}
}

// buildOverview gathers the daemons' answers by route, in the order the
// routes first appear in CONSOLE_DAEMONS, and lists what is wrong.
func buildOverview(s snapshot) overview {
	o := overview{At: s.At, Took: s.Took}
	index := map[string]int{}
	for _, v := range s.Daemons {
		if v.Err != "" {
			o.Unreachable = append(o.Unreachable, v)
			o.Problems = append(o.Problems, fmt.Sprintf("daemon %s: %s", v.Addr, v.Err))
			continue
		}
		if v.Status.BrokerError != "" {
			o.Problems = append(o.Problems, fmt.Sprintf("daemon %s: %s", v.Addr, v.Status.BrokerError))
		}
		for _, r := range v.Status.Routes {
			i, ok := index[r.Queue]
			if !ok {
				i = len(o.Routes)
				index[r.Queue] = i
				o.Routes = append(o.Routes, routeView{Queue: r.Queue})
			}
			o.Routes[i].add(v, r)
		}
	}
	for i := range o.Routes {
		o.Routes[i].judge()
		o.Problems = append(o.Problems, o.Routes[i].Problems...)
	}
	return o
}

// overview is the daemons' last answers, with the alerts that fire on
// them and on the history (alerts) listed among the problems.
func (s *server) overview(ctx context.Context) overview {
	o := buildOverview(s.daemons.Snapshot(ctx))
	now := timeNow()
	heads, err := s.heads.read(ctx, now)
	if err != nil {
		o.Problems = append(o.Problems, "RabbitMQ's management API: "+err.Error())
	}
	for i, r := range o.Routes {
		if r.Ready != nil && *r.Ready > 0 {
			o.Routes[i].Oldest = heads[r.Queue]
		}
		ps := s.history.points(r.Queue, now.Add(-ruleWindow-2*s.history.step))
		o.Problems = append(o.Problems, alerts(r, ps, now, s.history.step)...)
	}
	return o
}

// add counts one daemon's report of the route in.
func (r *routeView) add(v daemonView, st admin.Route) {
	r.Daemons++
	if st.State != "connecting" && st.State != "stopped" {
		r.Connected++
	}
	r.DonePerMinute += st.SucceededPerSecond * 60
	r.FailedPerMinute += st.FailedPerSecond * 60
	r.Running += st.Running
	// The queues' figures are RabbitMQ's, the same from every daemon: the
	// first that has them gives them.
	r.Ready = firstOf(r.Ready, st.Ready)
	r.Delayed = firstOf(r.Delayed, st.Delayed)
	r.Dead = firstOf(r.Dead, st.Dead)
	if r.Retry == nil {
		r.Retry = retrying(st.Retry)
	}
	if v.MetricsErr == "" {
		r.PoolKnown = true
		r.PoolBusy += v.Metrics.PoolBusy
		r.PoolChildren += v.Metrics.PoolChildren
		r.PoolWaiting += v.Metrics.PoolWaiting
		r.Blocked = r.Blocked || v.Metrics.Blocked
	}
	if st.Paused && !r.Paused {
		r.Paused, r.PauseReason, r.PausedSince = true, st.Reason, st.Since
	}
	if st.PoolPause != "" && r.PoolPause == "" {
		r.PoolPause = st.PoolPause
	}
}

// judge lists what is wrong with the route.
func (r *routeView) judge() {
	say := func(format string, args ...any) {
		r.Problems = append(r.Problems, r.Queue+": "+fmt.Sprintf(format, args...))
	}
	if r.Paused {
		reason := r.PauseReason
		if reason == "" {
			reason = "no reason given"
		}
		say("paused since %s UTC (%s)", r.PausedSince.UTC().Format(time.DateTime), reason)
	}
	if r.PoolPause != "" {
		say("paused for php-fpm: %s", r.PoolPause)
	}
	if r.Connected < r.Daemons {
		say("%d of %d daemons not connected to RabbitMQ", r.Daemons-r.Connected, r.Daemons)
	}
	if r.Dead != nil && *r.Dead > 0 {
		say("%s", plural(*r.Dead, "dead letter", "dead letters"))
	}
}

func firstOf(have, next *int) *int {
	if have != nil {
		return have
	}
	return next
}

// retrying sums the jobs waiting in the retry queues; nil when RabbitMQ
// was not asked.
func retrying(qs []admin.RetryQueue) *int {
	total, known := 0, false
	for _, q := range qs {
		if q.Ready != nil {
			total += *q.Ready
			known = true
		}
	}
	if !known {
		return nil
	}
	return &total
}

// plural writes n with the noun's singular or plural form: "1 dead
// letter", "3 dead letters".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// count shows a figure that may be missing.
func count(n *int) string {
	if n == nil {
		return "n/a"
	}
	return strconv.Itoa(*n)
}

// rate shows jobs per minute.
func rate(perMinute float64) string {
	return strconv.FormatFloat(perMinute, 'f', 1, 64)
}

// OldestAge shows how long the oldest waiting job has waited: "none" for
// an empty queue, "n/a" when RabbitMQ does not say (a quorum queue, a job
// without a timestamp).
func (r routeView) OldestAge() string {
	switch {
	case r.Ready != nil && *r.Ready == 0:
		return "none"
	case r.Oldest.IsZero():
		return "n/a"
	}
	return max(timeNow().Sub(r.Oldest), 0).Round(time.Second).String()
}

// pool shows php-fpm's busy children out of all.
func (r routeView) Pool() string {
	if !r.PoolKnown {
		return "n/a"
	}
	return fmt.Sprintf("%.0f / %.0f", r.PoolBusy, r.PoolChildren)
}

// live returns the figures that the pages refresh, by the key of the
// element that shows each (data-live="KEY").
func (o overview) live() map[string]string {
	f := map[string]string{"summary": o.Summary()}
	for _, r := range o.Routes {
		k := "route." + r.Queue + "."
		f[k+"state"] = r.State()
		f[k+"daemons"] = fmt.Sprintf("%d / %d", r.Connected, r.Daemons)
		f[k+"done"] = rate(r.DonePerMinute)
		f[k+"failed"] = rate(r.FailedPerMinute)
		f[k+"ready"] = count(r.Ready)
		f[k+"oldest"] = r.OldestAge()
		f[k+"running"] = strconv.FormatInt(r.Running, 10)
		f[k+"retry"] = count(r.Retry)
		f[k+"delayed"] = count(r.Delayed)
		f[k+"dead"] = count(r.Dead)
		f[k+"pool"] = r.Pool()
	}
	return f
}
