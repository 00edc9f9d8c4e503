// Package backoff holds the two pieces every retry loop of the project
// needs: a jittered delay and a wait that a context can cut short.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

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
