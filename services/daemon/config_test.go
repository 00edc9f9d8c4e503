package main

import (
	"testing"
	"time"
)

func TestHolding(t *testing.T) {
	for _, tc := range []struct {
		name              string
		c                 config
		work, hold, asked time.Duration // hold: both RunHold and CopyHold
	}{
		{
			name: "defaults: well within RabbitMQ's 30 minutes",
			c:    config{Concurrency: 5, RequestTimeout: time.Minute, ConsumerTimeout: 30 * time.Minute},
			work: time.Minute, hold: 14 * time.Minute,
		},
		{
			name: "prefetch beyond the workers waits for them",
			c:    config{Concurrency: 5, Prefetch: 12, RequestTimeout: time.Minute, ConsumerTimeout: 30 * time.Minute},
			work: 3 * time.Minute, hold: 13 * time.Minute,
		},
		{
			name: "jobs longer than the broker allows: ask for more",
			c:    config{Concurrency: 2, RequestTimeout: 45 * time.Minute, ConsumerTimeout: 30 * time.Minute},
			work: 45 * time.Minute, hold: minCopyHold, asked: 45*time.Minute + 2*minCopyHold + holdMargin,
		},
		{
			name: "no consumer timeout: no bound",
			c:    config{Concurrency: 2, RequestTimeout: 2 * time.Hour},
			work: 2 * time.Hour,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.c.holding()
			if h.Work != tc.work || h.RunHold != tc.hold || h.CopyHold != tc.hold || h.Ask != tc.asked {
				t.Errorf("holding %+v, want work %s, run and copy holds %s, asked %s", h, tc.work, tc.hold, tc.asked)
			}
			if tc.c.ConsumerTimeout > 0 {
				if limit := max(tc.c.ConsumerTimeout, h.Ask); h.Work+h.RunHold+h.CopyHold > limit-holdMargin {
					t.Errorf("work %s + run hold %s + copy hold %s exceed the timeout %s less the margin", h.Work, h.RunHold, h.CopyHold, limit)
				}
			}
		})
	}
}
