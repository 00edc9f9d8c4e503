package main

import (
	"net/http"
	"time"

	"github.com/fpmq/fpmq/services/internal/admin"
)

// delayedRoute is one route's delay queues, as its first daemon that
// answered read them from RabbitMQ.
type delayedRoute struct {
	Queue  string
	Queues []admin.RetryQueue // shortest delay first
	Total  *int               // nil when RabbitMQ was not asked
	// Next is the delay of the shortest delay queue that holds jobs: the
	// next job is back in the job queue within it, to run if due or to
	// wait again in a shorter one. Empty when none waits.
	Next string
}

// delayedPage shows the jobs published with a delay that are not due
// yet: GET /delayed.
func (s *server) delayedPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "delayed", page{Title: "Delayed jobs", Nav: "delayed", Data: s.delayedData(r)})
}

func (s *server) delayedData(r *http.Request) []delayedRoute {
	var out []delayedRoute
	seen := map[string]bool{}
	for _, v := range s.daemons.Snapshot(r.Context()).Daemons {
		for _, rt := range v.Status.Routes {
			// The queues' figures are RabbitMQ's, the same from every
			// daemon of the route: the first that has them gives them.
			if seen[rt.Queue] || v.Err != "" {
				continue
			}
			seen[rt.Queue] = true
			out = append(out, delayedOf(rt))
		}
	}
	return out
}

func delayedOf(rt admin.Route) delayedRoute {
	d := delayedRoute{Queue: rt.Queue, Queues: rt.DelayQueues, Total: rt.Delayed}
	for _, q := range rt.DelayQueues {
		if q.Ready != nil && *q.Ready > 0 {
			if delay, err := time.ParseDuration(q.Delay); err == nil {
				d.Next = span(delay)
			}
			break
		}
	}
	return d
}
