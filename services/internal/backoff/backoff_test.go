package backoff

import (
	"context"
	"testing"
	"time"
)

func TestJitter(t *testing.T) {
	for _, d := range []time.Duration{0, 1, 2, time.Second, time.Minute} {
		for range 100 {
			if got := Jitter(d); got < d/2 || got > d {
				t.Fatalf("Jitter(%s) = %s, outside [%s, %s]", d, got, d/2, d)
			}
		}
	}
}

func TestSleep(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Error("Sleep without cancellation returned false")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if Sleep(ctx, time.Hour) {
		t.Error("Sleep with a cancelled context returned true")
	}
	if time.Since(start) > time.Second {
		t.Error("Sleep with a cancelled context waited")
	}
	if Sleep(ctx, 0) {
		t.Error("Sleep(0) with a cancelled context returned true")
	}
}

func TestPolicyDelay(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name   string
		policy Policy
		want   []time.Duration // Delay(0), Delay(1), ...
	}{
		{"doubling up to the bound", Policy{Initial: 100 * ms, Max: time.Second, Factor: 2}, []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second}},
		{"factor 0 means 2", Policy{Initial: ms, Max: 5 * ms}, []time.Duration{ms, 2 * ms, 4 * ms, 5 * ms}},
		{"factor 3", Policy{Initial: 10 * time.Second, Max: time.Minute, Factor: 3}, []time.Duration{10 * time.Second, 30 * time.Second, time.Minute}},
		{"fractional factor", Policy{Initial: time.Second, Max: time.Minute, Factor: 1.5}, []time.Duration{time.Second, 1500 * ms, 2250 * ms}},
		{"factor 1 is constant", Policy{Initial: time.Second, Max: time.Minute, Factor: 1}, []time.Duration{time.Second, time.Second, time.Second}},
		{"factor below 1 is constant", Policy{Initial: time.Second, Max: time.Minute, Factor: 0.5}, []time.Duration{time.Second, time.Second}},
		{"initial above the bound", Policy{Initial: time.Hour, Max: time.Minute, Factor: 2}, []time.Duration{time.Minute, time.Minute}},
		{"zero initial", Policy{Max: time.Minute}, []time.Duration{0, 0}},
	}
	for _, tc := range tests {
		for n, want := range tc.want {
			if got := tc.policy.Delay(n); got != want {
				t.Errorf("%s: Delay(%d) = %s, want %s", tc.name, n, got, want)
			}
		}
	}
}

func TestPolicyDelayLarge(t *testing.T) {
	p := Policy{Initial: time.Second, Max: 30 * time.Second, Factor: 2}
	if got := p.Delay(1 << 30); got != 30*time.Second {
		t.Errorf("Delay(1<<30) = %s, want the bound 30s", got)
	}
	if got := p.Delay(-1); got != time.Second {
		t.Errorf("Delay(-1) = %s, want Initial", got)
	}
	unbounded := Policy{Initial: time.Second, Factor: 10}
	if got := unbounded.Delay(1000); got <= 0 {
		t.Errorf("unbounded Delay(1000) = %s, want the largest duration, not an overflow", got)
	}
}
