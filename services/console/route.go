package main

import (
	"net/http"
	"slices"
	"time"
)

// Windows a route's page may show, and the one it shows by default.
const (
	minWindow     = 5 * time.Minute
	defaultWindow = time.Hour
)

// routeData is a route's page: its charts over the window, from the
// console's history.
type routeData struct {
	Queue  string
	Window time.Duration
	// Windows are the choices offered, each at most the history's keep.
	Windows []time.Duration
	Charts  []chart
	From    time.Time // the oldest point shown; zero when there is none
	Points  int
	Step    time.Duration
	// Known is false for a queue that no daemon serves and the history
	// does not hold.
	Known bool
}

// routePage shows one route over time: GET /route?queue=Q&window=1h.
func (s *server) routePage(w http.ResponseWriter, r *http.Request) {
	d, status := s.routeData(r)
	s.render(w, r, status, "route", page{Title: "Route " + d.Queue, Nav: "overview", Queue: d.Queue, Data: d})
}

// routeData reads the query: the queue, and the window (a Go duration,
// clamped between 5 minutes and CONSOLE_HISTORY_KEEP; 1 h when absent
// or unreadable).
func (s *server) routeData(r *http.Request) (routeData, int) {
	q := r.URL.Query()
	d := routeData{Queue: q.Get("queue"), Window: min(defaultWindow, s.history.keep), Step: s.history.step}
	if w, err := time.ParseDuration(q.Get("window")); err == nil {
		d.Window = min(max(w, minWindow), s.history.keep)
	}
	for _, w := range []time.Duration{15 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour} {
		if w <= s.history.keep {
			d.Windows = append(d.Windows, w)
		}
	}
	if !slices.Contains(d.Windows, s.history.keep) {
		d.Windows = append(d.Windows, s.history.keep)
	}
	to := timeNow()
	from := to.Add(-d.Window)
	ps := s.history.points(d.Queue, from)
	d.Known = len(ps) > 0 || slices.Contains(s.history.queues(), d.Queue)
	if !d.Known {
		for _, rt := range buildOverview(s.daemons.Snapshot(r.Context())).Routes {
			d.Known = d.Known || rt.Queue == d.Queue
		}
	}
	if !d.Known {
		return d, http.StatusNotFound
	}
	d.Charts = routeCharts(ps, from, to)
	if len(ps) > 0 {
		d.From, d.Points = ps[0].At, len(ps)
	}
	return d, http.StatusOK
}
