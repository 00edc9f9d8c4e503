// Package jobrate keeps the daemon's recent rates of succeeded and failed
// jobs, for the status command: counts per second over the last minute in
// a small ring, read without Prometheus.
package jobrate

import (
	"sync"
	"time"

	"github.com/fpmq/fpmq/services/internal/outcome"
)

// Window is the span the rates are averaged over.
const Window = time.Minute

// slots is how many one-second counts the ring keeps: the Window, and the
// second going on.
const slots = int64(Window/time.Second) + 1

// Counter counts jobs by outcome, one slot per second. Its zero value is
// not ready: use New. Its methods are safe to call from any goroutine.
type Counter struct {
	now   func() time.Time
	mu    sync.Mutex
	start time.Time
	ring  [slots]slot
}

// slot holds the counts of one second, the Unix second they belong to.
type slot struct {
	sec               int64
	succeeded, failed int64
}

// Rates are jobs per second over Over: the last Window and the part of the
// current second gone by, or the time since the counter started if that
// is shorter.
type Rates struct {
	Succeeded float64
	Failed    float64
	Over      time.Duration
}

// New returns a counter that starts now. now is the clock; nil means
// time.Now.
func New(now func() time.Time) *Counter {
	if now == nil {
		now = time.Now
	}
	return &Counter{now: now, start: now()}
}

// Observe counts one settled delivery. A job succeeded when its worker
// answered 2xx; it failed when its attempt failed (retried or
// dead-lettered). A requeued delivery did not run and counts as neither.
func (c *Counter) Observe(o outcome.Outcome) {
	if o != outcome.Succeeded && o != outcome.Retried && o != outcome.DeadLettered {
		return
	}
	sec := c.now().Unix()
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.ring[sec%slots]
	if s.sec != sec {
		*s = slot{sec: sec}
	}
	if o == outcome.Succeeded {
		s.succeeded++
	} else {
		s.failed++
	}
}

// Rates returns the recent rates.
func (c *Counter) Rates() Rates {
	now := c.now()
	first := now.Unix() - slots + 1 // the oldest second counted
	c.mu.Lock()
	defer c.mu.Unlock()
	var succeeded, failed int64
	for _, s := range c.ring {
		if s.sec >= first && s.sec <= now.Unix() {
			succeeded += s.succeeded
			failed += s.failed
		}
	}
	from := time.Unix(first, 0)
	if c.start.After(from) {
		from = c.start
	}
	r := Rates{Over: now.Sub(from)}
	if secs := r.Over.Seconds(); secs > 0 {
		r.Succeeded, r.Failed = float64(succeeded)/secs, float64(failed)/secs
	}
	return r
}
