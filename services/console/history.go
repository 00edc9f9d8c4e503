package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// point is one route's figures over one step of the history: rates over
// the step, run and wait times of the jobs that started or ended in it,
// and the queue as it was at its end.
type point struct {
	At time.Time `json:"at"` // the end of the step
	// Done and Failed are jobs succeeded and attempts failed (retried or
	// dead-lettered), per minute over the step, summed over the route's
	// daemons.
	Done   float64 `json:"done"`
	Failed float64 `json:"failed"`
	// RunP50 and RunP95 are quantiles of the attempts' time in php-fpm,
	// WaitP50 and WaitP95 of the jobs' wait from publication to attempt,
	// in seconds, estimated from the daemons' histogram buckets as
	// Prometheus' histogram_quantile does; nil when no job ran in the step.
	RunP50  *float64 `json:"run_p50,omitempty"`
	RunP95  *float64 `json:"run_p95,omitempty"`
	WaitP50 *float64 `json:"wait_p50,omitempty"`
	WaitP95 *float64 `json:"wait_p95,omitempty"`
	// Ready is the jobs waiting in the job queue, Dead those in its
	// dead-letter queue, as RabbitMQ said; nil when it was not asked.
	Ready *int `json:"ready,omitempty"`
	Dead  *int `json:"dead,omitempty"`
}

// totals are one daemon's counters at one sample, to subtract from the
// next one's.
type totals struct {
	At                time.Time
	Succeeded, Failed float64
	Run, Wait         histogram
}

// history keeps one point per step for each route over the last keep,
// from the daemons' counters, and saves it to a file after each step so
// that a restart of the console loses no more than a step.
type history struct {
	step, keep time.Duration
	file       string // "" keeps the history in memory only
	log        zerolog.Logger

	mu     sync.Mutex
	routes map[string][]point // by queue, oldest first
	prev   map[string]totals  // by daemon address: the last sample's
}

// historyFile is what the history's file holds.
type historyFile struct {
	Version int                `json:"version"`
	Routes  map[string][]point `json:"routes"`
}

const historyVersion = 1

func newHistory(step, keep time.Duration, file string, log zerolog.Logger) *history {
	return &history{step: step, keep: keep, file: file, log: log, routes: map[string][]point{}, prev: map[string]totals{}}
}

// load reads the history saved by an earlier run, dropping what is older
// than keep. A missing file is an empty history; a file that cannot be
// read is reported and left for the next save to replace.
func (h *history) load(now time.Time) error {
	if h.file == "" {
		return nil
	}
	b, err := os.ReadFile(h.file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("CONSOLE_HISTORY_FILE: %w", err)
	}
	var f historyFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("CONSOLE_HISTORY_FILE %s: not a history: %w", h.file, err)
	}
	if f.Version != historyVersion {
		return fmt.Errorf("CONSOLE_HISTORY_FILE %s: version %d, this console writes %d", h.file, f.Version, historyVersion)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.routes = f.Routes
	if h.routes == nil {
		h.routes = map[string][]point{}
	}
	h.trim(now)
	return nil
}

// save writes the history to its file whole, through a temporary file
// renamed over it, so that a crash leaves the old or the new one.
func (h *history) save() error {
	if h.file == "" {
		return nil
	}
	h.mu.Lock()
	b, err := json.Marshal(historyFile{Version: historyVersion, Routes: h.routes})
	h.mu.Unlock()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(h.file), ".history-*")
	if err != nil {
		return fmt.Errorf("CONSOLE_HISTORY_FILE: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, nothing is there
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("CONSOLE_HISTORY_FILE: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("CONSOLE_HISTORY_FILE: %w", err)
	}
	return os.Rename(tmp.Name(), h.file)
}

// run samples src every step until ctx ends.
func (h *history) run(ctx context.Context, src overviewSource) {
	if err := h.load(time.Now()); err != nil {
		h.log.Warn().Err(err).Msg("history: starting empty")
	}
	tick := time.NewTicker(h.step)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		h.record(src.Snapshot(ctx))
		if err := h.save(); err != nil {
			h.log.Warn().Err(err).Msg("history: not saved; kept in memory")
		}
	}
}

// record adds a point for each route from the daemons' answers in s: the
// change of each daemon's counters since its last answer. A daemon seen
// for the first time, or one without figures, adds nothing to the rates;
// a counter lower than before means the daemon restarted, and its new
// value is what it counted since.
func (h *history) record(s snapshot) {
	h.mu.Lock()
	defer h.mu.Unlock()
	type sum struct {
		done, failed float64
		minutes      float64
		run, wait    histogram
		ready, dead  *int
		seen         bool
	}
	sums := map[string]*sum{}
	for _, v := range s.Daemons {
		if v.Err != "" || v.MetricsErr != "" || len(v.Status.Routes) == 0 {
			continue
		}
		// A daemon consumes one queue: its counters are that route's.
		r := v.Status.Routes[0]
		now := totals{At: s.At, Succeeded: v.Metrics.Succeeded, Failed: v.Metrics.Retried + v.Metrics.DeadLettered, Run: v.Metrics.Run, Wait: v.Metrics.Wait}
		last, known := h.prev[v.Addr]
		h.prev[v.Addr] = now
		acc := sums[r.Queue]
		if acc == nil {
			acc = &sum{}
			sums[r.Queue] = acc
		}
		acc.ready = firstOf(acc.ready, r.Ready)
		acc.dead = firstOf(acc.dead, r.Dead)
		minutes := now.At.Sub(last.At).Minutes()
		if !known || minutes <= 0 {
			continue
		}
		acc.seen = true
		acc.minutes = max(acc.minutes, minutes)
		acc.done += increase(last.Succeeded, now.Succeeded)
		acc.failed += increase(last.Failed, now.Failed)
		acc.run = acc.run.plus(now.Run.since(last.Run))
		acc.wait = acc.wait.plus(now.Wait.since(last.Wait))
	}
	for queue, acc := range sums {
		if !acc.seen {
			continue
		}
		h.routes[queue] = append(h.routes[queue], point{
			At:   s.At,
			Done: acc.done / acc.minutes, Failed: acc.failed / acc.minutes,
			RunP50: acc.run.quantile(0.5), RunP95: acc.run.quantile(0.95),
			WaitP50: acc.wait.quantile(0.5), WaitP95: acc.wait.quantile(0.95),
			Ready: acc.ready, Dead: acc.dead,
		})
	}
	h.trim(s.At)
}

// trim drops the points older than keep; h.mu is held.
func (h *history) trim(now time.Time) {
	oldest := now.Add(-h.keep)
	for queue, ps := range h.routes {
		i, _ := slices.BinarySearchFunc(ps, oldest, func(p point, t time.Time) int { return p.At.Compare(t) })
		if i == len(ps) {
			delete(h.routes, queue)
			continue
		}
		h.routes[queue] = ps[i:]
	}
}

// points returns a copy of the route's points since from, oldest first.
func (h *history) points(queue string, from time.Time) []point {
	h.mu.Lock()
	defer h.mu.Unlock()
	ps := h.routes[queue]
	i, _ := slices.BinarySearchFunc(ps, from, func(p point, t time.Time) int { return p.At.Compare(t) })
	return slices.Clone(ps[i:])
}

// queues returns the routes that have points, sorted.
func (h *history) queues() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Sorted(maps.Keys(h.routes))
}

// increase is a counter's increase from was to now; a counter lower than
// before was reset, and counted now since.
func increase(was, now float64) float64 {
	if now < was {
		return now
	}
	return now - was
}

// since returns the observations h holds that earlier did not: the
// buckets' increase (a reset counts from zero, as increase does). Bounds
// that differ give the empty histogram.
func (h histogram) since(earlier histogram) histogram {
	if earlier.Bounds == nil || h.Count < earlier.Count {
		return h
	}
	if !slices.Equal(h.Bounds, earlier.Bounds) {
		return histogram{}
	}
	d := histogram{Bounds: h.Bounds, Counts: make([]float64, len(h.Counts)), Count: h.Count - earlier.Count}
	for i := range h.Counts {
		d.Counts[i] = h.Counts[i] - earlier.Counts[i]
	}
	return d
}

// plus adds two histograms of the same bounds, bucket by bucket; the
// empty histogram adds nothing.
func (h histogram) plus(o histogram) histogram {
	switch {
	case o.Bounds == nil:
		return h
	case h.Bounds == nil:
		return histogram{Bounds: o.Bounds, Counts: slices.Clone(o.Counts), Count: o.Count}
	case !slices.Equal(h.Bounds, o.Bounds):
		return h
	}
	for i := range h.Counts {
		h.Counts[i] += o.Counts[i]
	}
	h.Count += o.Count
	return h
}

// quantile estimates the q-quantile (0 < q < 1) of the observations, in
// the histogram's unit, by linear interpolation inside the bucket that
// holds it, the lowest bucket starting at 0: what Prometheus'
// histogram_quantile does. Past the highest finite bound it returns that
// bound. Nil when the histogram holds no observation.
func (h histogram) quantile(q float64) *float64 {
	if h.Count <= 0 || len(h.Bounds) == 0 {
		return nil
	}
	rank := q * h.Count
	lower, below := 0.0, 0.0
	for i, bound := range h.Bounds {
		if h.Counts[i] >= rank && h.Counts[i] > below {
			v := lower + (bound-lower)*(rank-below)/(h.Counts[i]-below)
			return &v
		}
		lower, below = bound, h.Counts[i]
	}
	v := h.Bounds[len(h.Bounds)-1]
	return &v
}

// maxHistoryPoints bounds CONSOLE_HISTORY_KEEP / CONSOLE_HISTORY_STEP: the
// points kept per route, each saved again with every step.
const maxHistoryPoints = 10000
