package main

import (
	"context"
	"testing"
	"time"
)

func TestPaceKeepsTheSchedule(t *testing.T) {
	var at []time.Duration
	start := time.Now()
	err := pace(context.Background(), 5, 100, func(i int) error {
		at = append(at, time.Since(start))
		if i == 1 {
			time.Sleep(25 * time.Millisecond) // late: the next calls catch up
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if total := at[4]; total < 40*time.Millisecond || total > 80*time.Millisecond {
		t.Errorf("fifth call after %s, want about 40ms", total)
	}
	if at[2] < 30*time.Millisecond || at[3]-at[2] > 5*time.Millisecond {
		t.Errorf("calls at %v: want the third late and the fourth right after it", at)
	}
}

func TestPaceStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := pace(ctx, 1000, 10, func(int) error {
		calls++
		cancel()
		return nil
	})
	if err == nil || calls != 1 {
		t.Errorf("pace after cancel: %d calls, err %v", calls, err)
	}
}
