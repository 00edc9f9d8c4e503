package main

import (
	"testing"
	"time"
)

func TestHolding(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		c                     config
		work, copyHold, asked time.Duration
	}{
		{
			name: "defaults: well within RabbitMQ's 30 minutes",
			c:    config{Concurrency: 5, RequestTimeout: time.Minute, ConsumerTimeout: 30 * time.Minute},
			work: time.Minute, copyHold: 28 * time.Minute,
		},
		{
			name: "prefetch beyond the workers waits for them",
			c:    config{Concurrency: 5, Prefetch: 12, RequestTimeout: time.Minute, ConsumerTimeout: 30 * time.Minute},
			work: 3 * time.Minute, copyHold: 26 * time.Minute,
		},
		{
			name: "jobs longer than the broker allows: ask for more",
			c:    config{Concurrency: 2, RequestTimeout: 45 * time.Minute, ConsumerTimeout: 30 * time.Minute},
			work: 45 * time.Minute, copyHold: minCopyHold, asked: 45*time.Minute + minCopyHold + holdMargin,
		},
		{
			name: "no consumer timeout: no bound",
			c:    config{Concurrency: 2, RequestTimeout: 2 * time.Hour},
			work: 2 * time.Hour,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.c.holding()
			if h.Work != tc.work || h.CopyHold != tc.copyHold || h.Ask != tc.asked {
				t.Errorf("holding %+v, want work %s, copy hold %s, asked %s", h, tc.work, tc.copyHold, tc.asked)
			}
			if tc.c.ConsumerTimeout > 0 {
				if limit := max(tc.c.ConsumerTimeout, h.Ask); h.Work+h.CopyHold > limit-holdMargin {
					t.Errorf("work %s + copy hold %s exceed the timeout %s less the margin", h.Work, h.CopyHold, limit)
				}
			}
		})
	}
}
