package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestCount(t *testing.T) {
	confirmed := map[int64]bool{1: true, 2: true, 3: true, 4: true, 5: true}
	runs := map[int64]int{1: 1, 2: 2, 3: 1, 9: 1} // 4 and 5 never ran; 9 ran unconfirmed
	r := result{sent: 5, deadLettered: 1}
	r.count(confirmed, runs)
	if r.processed != 3 || r.duplicates != 1 || r.lost != 1 || r.unconfirmedRan != 1 {
		t.Errorf("processed %d, duplicates %d, lost %d, unconfirmed ran %d; want 3, 1, 1 (one of two missing is dead), 1",
			r.processed, r.duplicates, r.lost, r.unconfirmedRan)
	}
}

// samples returns one sample every 5 s with the RSS of f(i) MiB.
func samples(n int, f func(i int) float64) []sample {
	var s []sample
	for i := range n {
		s = append(s, sample{at: time.Duration(i) * 5 * time.Second, rss: uint64(f(i) * mib)})
	}
	return s
}

func TestVerdict(t *testing.T) {
	cfg := settings{jobs: 10, rssGrowthMax: 16}
	flat := samples(100, func(i int) float64 { return 12 + float64(i%3) })
	// Start-up takes the first samples to 30 MiB; it then stays flat.
	warm := samples(100, func(i int) float64 { return min(30, 5+float64(i)*5) })
	leak := samples(100, func(i int) float64 { return 12 + float64(i)*0.5 })
	for _, tc := range []struct {
		name string
		r    result
		want string
	}{
		{"flat", result{sent: 10, samples: flat}, ""},
		{"warm-up is not growth", result{sent: 10, samples: warm}, ""},
		{"leak", result{sent: 10, samples: leak}, "the daemon's RSS grew by 40.0 MiB, more than SOAK_RSS_GROWTH_MAX (16)"},
		{"lost", result{sent: 10, lost: 2, samples: flat}, "2 jobs lost"},
		{"unsent", result{sent: 9, samples: flat}, "only 9 of 10 jobs confirmed by the broker"},
		{"unsampled", result{sent: 10}, "the daemon's RSS was never sampled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.r.verdict(cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("verdict %v, want a pass", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Errorf("verdict %v, want %q", err, tc.want)
			}
		})
	}
}

func TestWrite(t *testing.T) {
	r := result{sent: 100, processed: 100, duplicates: 2, samples: samples(30, func(int) float64 { return 10 }),
		faults: faultLog{daemon: 1, events: []string{"31s daemon restarted"}}, duration: 3 * time.Minute}
	var out bytes.Buffer
	r.write(&out, settings{jobs: 100, duration: 2 * time.Minute, faultInterval: 30 * time.Second, rssGrowthMax: 16, seed: 7})
	for _, want := range []string{
		"jobs: sent 100 / processed 100 / duplicates 2 / dead-lettered 0 / lost 0\n",
		"faults: 1 daemon restarts, 0 php-fpm restarts, 0 RabbitMQ node restarts\n  31s daemon restarted\n",
		"first 10.0, last 10.0, max 10.0; median of the second tenth 10.0, of the last tenth 10.0: growth +0.0 (limit 16)",
		"per minute: 0m 10.0, 1m 10.0, 2m 10.0\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestLoadSettings(t *testing.T) {
	env := map[string]string{"SOAK_JOBS": "2000", "SOAK_DURATION": "1m", "SOAK_SEED": "42"}
	s, err := loadSettings(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if s.jobs != 2000 || s.duration != time.Minute || s.seed != 42 || s.faultInterval != 30*time.Second || s.rssGrowthMax != 16 {
		t.Errorf("settings %+v", s)
	}
	for k, v := range map[string]string{"SOAK_JOBS": "0", "SOAK_DURATION": "soon", "SOAK_FAULT_INTERVAL": "1s", "SOAK_RSS_GROWTH_MAX": "-1", "SOAK_SEED": "x"} {
		_, err := loadSettings(func(name string) string {
			if name == k {
				return v
			}
			return ""
		})
		if err == nil || !strings.HasPrefix(err.Error(), k+": ") {
			t.Errorf("%s=%s: error %v, want one naming %s", k, v, err, k)
		}
	}
}

func TestParseSent(t *testing.T) {
	got := parseSent(" [x] Message sent: 1\n [x] Message sent: 3\ncaller: timed out (2 of 3 jobs confirmed)\n")
	if len(got) != 2 || !got[1] || !got[3] {
		t.Errorf("parseSent = %v, want 1 and 3", got)
	}
}
