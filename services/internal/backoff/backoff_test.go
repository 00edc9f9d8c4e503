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
