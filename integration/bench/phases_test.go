package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseSamples(t *testing.T) {
	in := "direct 1 100 150 160\npipeline 2 200 260 270\ndirect 3 300 340 345\n\n"
	got, err := parseSamples(strings.NewReader(in), "direct")
	if err != nil {
		t.Fatal(err)
	}
	want := []sample{{1, 100, 150, 160}, {3, 300, 340, 345}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("parseSamples = %v, want %v", got, want)
	}
	for _, bad := range []string{"direct 1 2 3\n", "direct 1 2 x 4\n"} {
		if _, err := parseSamples(strings.NewReader(bad), "direct"); err == nil {
			t.Errorf("parseSamples(%q) did not fail", bad)
		}
	}
}

func TestSampleJobIsAJob(t *testing.T) {
	before := time.Now().UnixMicro()
	var m struct {
		Number int     `json:"number"`
		Tag    string  `json:"tag"`
		Sleep  float64 `json:"sleep"`
		SentUS int64   `json:"sent_us"`
	}
	if err := json.Unmarshal(sampleJob(7, "article", 1500*time.Millisecond), &m); err != nil {
		t.Fatal(err)
	}
	if m.Number != 7 || m.Tag != "article" || m.Sleep != 1.5 || m.SentUS < before || m.SentUS > time.Now().UnixMicro() {
		t.Errorf("sampleJob = %+v", m)
	}
	if s := string(sampleJob(1, "direct", 0)); strings.Contains(s, "sleep") {
		t.Errorf("sampleJob without a nap has a sleep field: %s", s)
	}
}

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

func TestFormsMatchTheirJobs(t *testing.T) {
	var m struct {
		Number int    `json:"number"`
		Tag    string `json:"tag"`
	}
	if err := json.Unmarshal(sampleJob(7, "direct", 0), &m); err != nil {
		t.Fatal(err)
	}
	form, err := url.ParseQuery(string(sampleForm(7, "direct")))
	if err != nil {
		t.Fatal(err)
	}
	if form.Get("number") != strconv.Itoa(m.Number) || form.Get("tag") != m.Tag || form.Get("sent_us") == "" || len(form) != 3 {
		t.Errorf("sampleForm = %v, want the fields of sampleJob %+v", form, m)
	}
	if got := string(sampleForm(7, "direct")); !strings.HasPrefix(got, "number=7&tag=direct&sent_us=") {
		t.Errorf("sampleForm = %s: not in the message's order", got)
	}
	if got, want := string(jobJSON(42)), `{"number":42}`; got != want {
		t.Errorf("jobJSON = %s, want %s", got, want)
	}
	if got, want := string(jobForm(42)), "number=42"; got != want {
		t.Errorf("jobForm = %s, want %s", got, want)
	}
}

func TestWritePlot(t *testing.T) {
	var buf bytes.Buffer
	pts := []point{{1, 900, 850, 950, true}, {2, 1700, 1600, 1800, true}, {5, 3500, 3400, 3600, true}, {10, 3600, 3500, 3700, true}, {20, 3550, 3400, 3700, true}, {50, 3400, 3300, 3500, true}}
	if err := writePlot(&buf, "throughput", pts, 7800, "CPU limit"); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != plotW || b.Dy() != plotH {
		t.Errorf("size %v", b)
	}
	if err := writePlot(&bytes.Buffer{}, "empty", []point{{1, 0, 0, 0, false}}, 0, ""); err == nil {
		t.Error("a plot without figures did not fail")
	}
}

func TestNiceStep(t *testing.T) {
	for raw, want := range map[float64]float64{0.7: 1, 130: 200, 800: 1000, 4100: 5000, 1: 1} {
		if got := niceStep(raw); got != want {
			t.Errorf("niceStep(%g) = %g, want %g", raw, got, want)
		}
	}
}
