package jobrate

import (
	"math"
	"testing"
	"time"

	"github.com/fpmq/fpmq/services/internal/outcome"
	"github.com/fpmq/fpmq/services/internal/testutil"
)

func TestRates(t *testing.T) {
	clk := &testutil.Clock{T: time.Unix(1_000_000, 0)}
	c := New(clk.Now)
	if r := c.Rates(); r.Succeeded != 0 || r.Failed != 0 {
		t.Errorf("rates %+v before any job, want 0", r)
	}

	// 10 s after the start: 20 succeeded, 5 failed (3 retried, 2 dead),
	// and requeued ones that do not count.
	clk.T = clk.T.Add(10 * time.Second)
	for range 20 {
		c.Observe(outcome.Succeeded)
	}
	for _, o := range []outcome.Outcome{outcome.Retried, outcome.Retried, outcome.Retried, outcome.DeadLettered, outcome.DeadLettered, outcome.Requeued} {
		c.Observe(o)
	}
	assertRates(t, c.Rates(), 2, 0.5, 10*time.Second)

	// A minute after the start, over the full window.
	clk.T = clk.T.Add(50 * time.Second)
	c.Observe(outcome.Succeeded)
	assertRates(t, c.Rates(), 21.0/60, 5.0/60, Window)

	// 71 s after the start, the first counts are out of the window, and
	// their slot holds this second's.
	clk.T = clk.T.Add(11 * time.Second)
	c.Observe(outcome.Retried)
	assertRates(t, c.Rates(), 1.0/60, 1.0/60, Window)
	clk.T = clk.T.Add(2 * Window)
	assertRates(t, c.Rates(), 0, 0, Window)
}

func assertRates(t *testing.T, r Rates, succeeded, failed float64, over time.Duration) {
	t.Helper()
	if math.Abs(r.Succeeded-succeeded) > 1e-9 || math.Abs(r.Failed-failed) > 1e-9 || r.Over != over {
		t.Errorf("rates %+v, want %g succeeded/s and %g failed/s over %s", r, succeeded, failed, over)
	}
}
