// Package backoff holds what every retry loop of the project needs: an
// exponential policy that says how long to wait before the n-th retry, a
// jitter that spreads those waits, and a wait that a context can cut short.
package backoff

import (
	"context"
	"math"
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff: the first delay is Initial, each next
// one Factor times the one before, and none exceeds Max.
//
// Factor 0 means 2, and a Factor below 1 is taken as 1 (constant delays), so
// that delays never shrink. Max 0 or less means no bound beyond the largest
// time.Duration. A Policy holds no state: loops keep their own count of
// attempts and start it again from 0 once an attempt succeeded.
type Policy struct {
	Initial time.Duration
	Max     time.Duration
	Factor  float64
}

// Delay returns the delay before retry n, counted from 0:
// min(Initial × Factor^n, Max). A negative n counts as 0.
func (p Policy) Delay(n int) time.Duration {
	limit := float64(math.MaxInt64)
	if p.Max > 0 {
		limit = float64(p.Max)
	}
	f := p.Factor
	switch {
	case f == 0:
		f = 2
	case f < 1:
		f = 1
	}
	// Repeated multiplication rather than math.Pow, so that the delays are
	// exactly those of the loops this replaces; it stops at the bound, so
	// a large n costs no more than a few dozen steps unless Factor is 1.
	d := float64(p.Initial)
	for i := 0; i < n && d < limit && f > 1; i++ {
		d *= f
	}
	if d >= limit {
		if p.Max > 0 {
			return p.Max
		}
		return math.MaxInt64
	}
	return time.Duration(d)
}

// Jitter spreads d over [d/2, d], so that clients or jobs that failed
// together do not all try again at the same moment.
func Jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// Sleep waits for d and returns true, or returns false as soon as ctx is
// done. A d of zero or less does not wait.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
