package broker

import (
	"slices"
	"testing"
	"time"

	"github.com/fpmq/fpmq/services/internal/backoff"
)

func TestRetryDelays(t *testing.T) {
	tests := []struct {
		attempts int
		initial  time.Duration
		factor   float64
		max      time.Duration
		want     []time.Duration
	}{
		{5, time.Second, 2, time.Minute, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}},
		{4, 10 * time.Second, 3, 60 * time.Second, []time.Duration{10 * time.Second, 30 * time.Second, 60 * time.Second}},
		{3, time.Second, 1, time.Minute, []time.Duration{time.Second, time.Second}},
		{1, time.Second, 2, time.Minute, nil},
		{0, time.Second, 2, time.Minute, nil},
	}
	for _, tc := range tests {
		p := backoff.Policy{Initial: tc.initial, Max: tc.max, Factor: tc.factor}
		if got := RetryDelays(tc.attempts, p); !slices.Equal(got, tc.want) {
			t.Errorf("RetryDelays(%d, %s, %g, %s) = %v, want %v", tc.attempts, tc.initial, tc.factor, tc.max, got, tc.want)
		}
	}
}

func TestRetryQueueNames(t *testing.T) {
	top := Topology{Queue: "commands", RetryDelays: []time.Duration{time.Second, 1500 * time.Millisecond, 2 * time.Minute}}
	var names []string
	for i := range top.RetryDelays {
		names = append(names, top.RetryQueue(i))
	}
	want := []string{"commands.retry.1s", "commands.retry.1.5s", "commands.retry.2m0s"}
	if !slices.Equal(names, want) {
		t.Errorf("retry queues %v, want %v", names, want)
	}
}

func TestCheckQueueType(t *testing.T) {
	for _, ok := range []string{QueueClassic, QueueQuorum} {
		if err := CheckQueueType(ok); err != nil {
			t.Errorf("CheckQueueType(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "stream", "Quorum"} {
		if err := CheckQueueType(bad); err == nil {
			t.Errorf("CheckQueueType(%q) accepted", bad)
		}
	}
}
