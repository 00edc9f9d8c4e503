package main

import (
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// The name may hold spaces and parentheses; fields 14 and 15 are utime and stime.
	stat := "1234 (containerd-shim (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0 100 0 0"
	comm, ticks, ok := parseStat(stat)
	if !ok || comm != "containerd-shim (x)" || ticks != 300 {
		t.Errorf("parseStat = %q, %d, %v; want containerd-shim (x), 300, true", comm, ticks, ok)
	}
	if _, _, ok := parseStat("garbage"); ok {
		t.Error("parseStat accepted garbage")
	}
}

func TestEngineDeltaIgnoresProcessesThatEnded(t *testing.T) {
	before := map[int]time.Duration{1: time.Second, 2: 5 * time.Second}
	after := map[int]time.Duration{1: 3 * time.Second, 3: time.Second} // 2 ended, 3 started
	if got := engineDelta(before, after); got != 3*time.Second {
		t.Errorf("engineDelta = %s, want 3s", got)
	}
}

func TestParseCPULine(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	got, err := parseCPULine("cpu  100 2 30 5000 70 4 5 6 50 0")
	if err != nil || got != 147 {
		t.Errorf("parseCPULine = %d, %v; want 147", got, err)
	}
	for _, bad := range []string{"cpu0 1 2 3 4 5 6 7 8", "cpu 1 2 3", "cpu 1 2 x 4 5 6 7 8"} {
		if _, err := parseCPULine(bad); err == nil {
			t.Errorf("parseCPULine(%q) did not fail", bad)
		}
	}
}
