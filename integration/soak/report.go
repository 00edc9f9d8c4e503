package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// result is what a run counted.
type result struct {
	sent           int // jobs the caller confirmed
	callerFailures int // caller runs that exited non-zero, their unconfirmed jobs published again
	processed      int // confirmed jobs that ran at least once
	duplicates     int // confirmed jobs that ran more than once
	unconfirmedRan int // jobs that ran though no caller reported them confirmed
	deadLettered   int
	lost           int // confirmed jobs that never ran and are not dead-lettered
	faults         faultLog
	samples        []sample
	duration       time.Duration
}

// count fills in the job counts from the confirmed jobs and the runs of
// each number. A dead-lettered job is accounted for, not lost.
func (r *result) count(confirmed map[int64]bool, runs map[int64]int) {
	for n := range confirmed {
		switch c := runs[n]; {
		case c == 0:
			r.lost++
		case c > 1:
			r.duplicates++
			fallthrough
		default:
			r.processed++
		}
	}
	for n := range runs {
		if !confirmed[n] {
			r.unconfirmedRan++
		}
	}
	r.lost -= min(r.lost, r.deadLettered)
}

// rssStats sums up the samples, in MiB: the first, the last, the highest,
// and the growth from the median of the second tenth of the run (after
// start-up) to the median of the last tenth.
type rssStats struct {
	first, last, max, baseline, final, growth float64
}

const mib = 1 << 20

func (r result) rss() (rssStats, bool) {
	n := len(r.samples)
	if n == 0 {
		return rssStats{}, false
	}
	v := make([]float64, n)
	for i, s := range r.samples {
		v[i] = float64(s.rss) / mib
	}
	tenth := max(1, n/10)
	baseline := median(v[min(tenth, n-1):min(2*tenth, n)])
	final := median(v[n-tenth:])
	return rssStats{first: v[0], last: v[n-1], max: slices.Max(v), baseline: baseline, final: final, growth: final - baseline}, true
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// perMinute returns the last sample of each minute, in MiB.
func (r result) perMinute() []string {
	var out []string
	minute := -1
	for i, s := range r.samples {
		m := int(s.at / time.Minute)
		if i+1 < len(r.samples) && int(r.samples[i+1].at/time.Minute) == m {
			continue
		}
		if m != minute {
			out = append(out, fmt.Sprintf("%dm %.1f", m, float64(s.rss)/mib))
			minute = m
		}
	}
	return out
}

// write prints the report.
func (r result) write(w io.Writer, cfg settings) {
	fmt.Fprintf(w, "fpmq soak, %s: %d jobs over %s, a fault every %s on average (seed %d); took %s\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), cfg.jobs, cfg.duration, cfg.faultInterval, cfg.seed, r.duration.Round(time.Second))
	fmt.Fprintf(w, "setup: %d RabbitMQ nodes, quorum queues; php-fpm %d children, %g s per job; two daemons of %d, the caller through AMQP_ADDRESSES every %s\n",
		nodes, children, workerSleep, children/2, batchEvery)
	fmt.Fprintf(w, "jobs: sent %d / processed %d / duplicates %d / dead-lettered %d / lost %d\n",
		r.sent, r.processed, r.duplicates, r.deadLettered, r.lost)
	fmt.Fprintf(w, "      %d caller runs failed (their unconfirmed jobs published again); %d jobs ran that no caller reported confirmed\n",
		r.callerFailures, r.unconfirmedRan)
	fmt.Fprintf(w, "faults: %d daemon restarts, %d php-fpm restarts, %d RabbitMQ node restarts\n", r.faults.daemon, r.faults.phpfpm, r.faults.node)
	for _, e := range r.faults.events {
		fmt.Fprintf(w, "  %s\n", e)
	}
	if st, ok := r.rss(); ok {
		fmt.Fprintf(w, "steady daemon RSS (MiB), %d samples every %s: first %.1f, last %.1f, max %.1f; median of the second tenth %.1f, of the last tenth %.1f: growth %+.1f (limit %g)\n",
			len(r.samples), sampleEvery, st.first, st.last, st.max, st.baseline, st.final, st.growth, cfg.rssGrowthMax)
		fmt.Fprintf(w, "  per minute: %s\n", strings.Join(r.perMinute(), ", "))
	} else {
		fmt.Fprintln(w, "steady daemon RSS: no sample")
	}
}

// verdict returns why the system failed the soak, or nil: a job lost, not
// every job sent, or the RSS grown beyond the limit (or never sampled).
func (r result) verdict(cfg settings) error {
	var errs []error
	if r.lost > 0 {
		errs = append(errs, fmt.Errorf("%d jobs lost", r.lost))
	}
	if r.sent < cfg.jobs {
		errs = append(errs, fmt.Errorf("only %d of %d jobs confirmed by the broker", r.sent, cfg.jobs))
	}
	st, ok := r.rss()
	switch {
	case !ok:
		errs = append(errs, errors.New("the daemon's RSS was never sampled"))
	case st.growth > cfg.rssGrowthMax:
		errs = append(errs, fmt.Errorf("the daemon's RSS grew by %.1f MiB, more than SOAK_RSS_GROWTH_MAX (%g)", st.growth, cfg.rssGrowthMax))
	}
	return errors.Join(errs...)
}
