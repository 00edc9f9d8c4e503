package deadletter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/backoff"
	"github.com/fpmq/fpmq/services/internal/broker"
)

// ErrDeclined means the operator answered no when asked to confirm.
var ErrDeclined = errors.New("declined")

// Result counts what an operation did.
type Result struct {
	Total   int      // messages in the queue when the operation started
	Read    int      // messages read, at most Total
	Matched int      // messages read that the filter selected
	Done    int      // of them, listed, replayed or purged
	Failed  int      // of them, not replayed: see ReplayConfig.Failed
	Missing []string // the filter's ids that no message read had
	// Deliveries is the highest count of earlier deliveries among the
	// messages read (Job.Deliveries): a quorum queue counts every read,
	// and one with a delivery limit drops a message read too often.
	Deliveries int
}

// count notes the message read as j.
func (r *Result) count(j Job) {
	r.Read++
	r.Deliveries = max(r.Deliveries, j.Deliveries)
}

// Progress is called after each message read and each one replayed or
// purged, with the counts so far.
type Progress func(Result)

// List calls emit with each job of s that f selects, in queue order, and
// leaves the queue as it was once s is closed. Ages are counted up to now.
func List(ctx context.Context, s *Session, f Filter, now time.Time, emit func(Job) error, progress Progress) (Result, error) {
	res := Result{Total: s.Count()}
	seen := map[string]bool{}
	_, err := s.Each(ctx, func(d amqp.Delivery) error {
		j := JobOf(d)
		res.count(j)
		if f.Match(j, now) {
			res.Matched++
			seen[j.ID] = true
			if err := emit(j); err != nil {
				return err
			}
			res.Done++
		}
		report(progress, res)
		return nil
	})
	res.Missing = missing(f.IDs, seen)
	return res, err
}

// Publish publishes msg to queue and returns once the broker confirmed
// it; broker.Publisher.Publish is one. An error wrapping
// broker.ErrNotConfirmed concerns this message only (the broker refused or
// returned it); any other ends the replay.
type Publish func(ctx context.Context, queue string, msg amqp.Publishing) error

// ReplayConfig says which jobs Replay replays, and how.
type ReplayConfig struct {
	Filter Filter
	// Fallback is the queue of jobs without the x-fpmq-queue header; empty
	// means such jobs fail.
	Fallback string
	Rate     Rate // at most this many jobs a second; 0: no limit
	Publish  Publish
	// Failed, if set, is told of each selected job that was not replayed,
	// and why; the job stays in the dead-letter queue.
	Failed   func(Job, error)
	Progress Progress
	Now      time.Time // ages are counted up to it; zero means time.Now()
}

// Rate is a number of jobs per second; 0 means no limit.
type Rate float64

// Interval returns the time between two jobs at rate r; 0 for no limit.
func (r Rate) Interval() time.Duration {
	if r <= 0 {
		return 0
	}
	return time.Duration(float64(time.Second) / float64(r))
}

// ErrNoQueue means a job has no x-fpmq-queue header and no fallback
// queue was given.
var ErrNoQueue = errors.New("no x-fpmq-queue header to say where it came from; give --queue")

// Replay publishes each job of s that cfg.Filter selects back to the queue
// it came from, as Republish makes it, and acks its dead copy once the
// broker confirmed the new one. Jobs are replayed one at a time and each
// ack is taken in by the broker before the next job is published, so that
// an interruption at any point loses no job and duplicates at most the
// one whose copy was published and not yet acked.
//
// A job the broker refuses or returns (no such queue), or without a
// queue to go to, is told to cfg.Failed and stays dead; the replay goes on.
// Any other error, or the end of ctx, stops it: the jobs not replayed yet
// stay where they were.
func Replay(ctx context.Context, s *Session, cfg ReplayConfig) (Result, error) {
	now := cfg.Now
	if now.IsZero() {
		now = time.Now()
	}
	res := Result{Total: s.Count()}
	seen := map[string]bool{}
	interval := cfg.Rate.Interval()
	var last time.Time
	fail := func(j Job, err error) {
		res.Failed++
		if cfg.Failed != nil {
			cfg.Failed(j, err)
		}
	}
	_, err := s.Each(ctx, func(d amqp.Delivery) error {
		j := JobOf(d)
		res.count(j)
		defer func() { report(cfg.Progress, res) }()
		if !cfg.Filter.Match(j, now) {
			return nil
		}
		res.Matched++
		seen[j.ID] = true
		target := j.Queue
		if target == "" {
			target = cfg.Fallback
		}
		switch target {
		case "":
			fail(j, ErrNoQueue)
			return nil
		case s.Queue():
			fail(j, fmt.Errorf("its queue is the dead-letter queue %q itself", target))
			return nil
		}
		if interval > 0 && !last.IsZero() {
			if !backoff.Sleep(ctx, time.Until(last.Add(interval))) {
				return ctx.Err()
			}
		}
		last = time.Now()
		if err := cfg.Publish(ctx, target, Republish(d, last)); err != nil {
			if ctx.Err() == nil && errors.Is(err, broker.ErrNotConfirmed) {
				fail(j, err)
				return nil
			}
			return fmt.Errorf("replay %s: %w", describe(j), err)
		}
		// The copy is in the job queue: only now may the dead one go.
		if err := s.Ack(d, true); err != nil {
			return fmt.Errorf("replay %s: published to %q, but its dead copy stays (replaying again would duplicate it): %w", describe(j), target, err)
		}
		res.Done++
		return nil
	})
	res.Missing = missing(cfg.Filter.IDs, seen)
	return res, err
}

// Purge deletes the jobs of s that f selects. It reads every message
// first, then asks confirm with the selected jobs (their bodies left out);
// it deletes them only if confirm returns true, and returns ErrDeclined if
// it returns false. A nil confirm does not ask. The deletions are done once
// the session is closed without error.
func Purge(ctx context.Context, s *Session, f Filter, now time.Time, confirm func([]Job) (bool, error), progress Progress) (Result, error) {
	res := Result{Total: s.Count()}
	seen := map[string]bool{}
	var selected []Job
	_, err := s.Each(ctx, func(d amqp.Delivery) error {
		j := JobOf(d)
		res.count(j)
		defer func() { report(progress, res) }()
		if !f.Match(j, now) {
			return nil
		}
		res.Matched++
		seen[j.ID] = true
		j.Message.Body = nil // only its tag is needed from now on
		selected = append(selected, j)
		return nil
	})
	res.Missing = missing(f.IDs, seen)
	if err != nil || len(selected) == 0 {
		return res, err
	}
	if confirm != nil {
		ok, err := confirm(selected)
		if err != nil {
			return res, err
		}
		if !ok {
			return res, ErrDeclined
		}
	}
	for _, j := range selected {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if err := s.Ack(j.Message, false); err != nil {
			return res, fmt.Errorf("purge %s: %w", describe(j), err)
		}
		res.Done++
		report(progress, res)
	}
	return res, nil
}

// describe names j in messages.
func describe(j Job) string {
	if j.ID != "" {
		return fmt.Sprintf("job %q", j.ID)
	}
	return "a job without message id"
}

// missing returns the ids not in seen, in their order, each once.
func missing(ids []string, seen map[string]bool) []string {
	var out []string
	for _, id := range ids {
		if !seen[id] && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

func report(p Progress, r Result) {
	if p != nil {
		p(r)
	}
}
