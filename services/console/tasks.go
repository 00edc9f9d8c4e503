package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/fpmq/fpmq/services/internal/deadletter"
)

// task is one replay or purge running in the background: a replay at a
// rate may take minutes, longer than a browser waits for an answer.
type task struct {
	ID      string
	Kind    string // "replay" or "purge"
	Queue   string // the route
	User    string // who started it
	What    string // the selection, in words
	Started time.Time
	Ended   time.Time // zero while it runs
	Result  deadletter.Result
	Err     string
}

// Running reports whether the task has not ended.
func (t task) Running() bool { return t.Ended.IsZero() }

// Progress says how far the task got, in words.
func (t task) Progress() string {
	r := t.Result
	done := "replayed"
	if t.Kind == "purge" {
		done = "purged"
	}
	s := fmt.Sprintf("%s %d of %d matching (%d of %d read)", done, r.Done, r.Matched, r.Read, r.Total)
	if r.Failed > 0 {
		s += fmt.Sprintf(", %d failed and stay dead", r.Failed)
	}
	switch {
	case t.Err != "":
		s += ": stopped: " + t.Err
	case t.Running():
		s += ", running"
	default:
		s += ", done"
	}
	return s
}

// errBusy means a task already runs on the route's dead-letter queue: two
// at once would each see the queue without the messages the other holds.
var errBusy = errors.New("a replay or purge already runs on this route: wait for it to end")

// keptTasks is how many ended tasks the pages still show.
const keptTasks = 20

// tasks runs the background tasks, one at a time per route, and keeps
// the latest for the pages. Every task ends when ctx does; wait waits
// for them all.
type tasks struct {
	ctx  context.Context
	log  zerolog.Logger
	wg   sync.WaitGroup
	mu   sync.Mutex
	list []*task // oldest first
}

func newTasks(ctx context.Context, log zerolog.Logger) *tasks {
	return &tasks{ctx: ctx, log: log}
}

// start runs fn in the background as t, unless a task runs on its route.
func (ts *tasks) start(t task, fn func(ctx context.Context, progress deadletter.Progress) (deadletter.Result, error)) (task, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if slices.ContainsFunc(ts.list, func(o *task) bool { return o.Queue == t.Queue && o.Running() }) {
		return task{}, errBusy
	}
	t.ID, t.Started = randomToken()[:12], time.Now()
	running := &t
	ts.list = append(ts.list, running)
	ts.prune()
	ts.wg.Go(func() {
		res, err := fn(ts.ctx, func(r deadletter.Result) {
			ts.mu.Lock()
			running.Result = r
			ts.mu.Unlock()
		})
		ts.mu.Lock()
		running.Result, running.Ended = res, time.Now()
		if err != nil {
			running.Err = err.Error()
		}
		done := *running
		ts.mu.Unlock()
		ev := ts.log.Info()
		if err != nil {
			ev = ts.log.Error().Err(err)
		}
		ev.Str("task", done.ID).Str("action", done.Kind).Str("queue", done.Queue).Str("user", done.User).
			Str("selection", done.What).Int("read", res.Read).Int("matched", res.Matched).
			Int("done", res.Done).Int("failed", res.Failed).Dur("took", done.Ended.Sub(done.Started)).
			Msg("dead letters " + done.Kind + " ended")
	})
	return t, nil
}

// prune drops the oldest ended tasks beyond keptTasks; ts.mu is held.
func (ts *tasks) prune() {
	for len(ts.list) > keptTasks {
		i := slices.IndexFunc(ts.list, func(o *task) bool { return !o.Running() })
		if i < 0 {
			return
		}
		ts.list = slices.Delete(ts.list, i, i+1)
	}
}

// recent returns copies of the tasks of queue (every route's if empty),
// newest first.
func (ts *tasks) recent(queue string) []task {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var out []task
	for i := len(ts.list) - 1; i >= 0; i-- {
		if queue == "" || ts.list[i].Queue == queue {
			out = append(out, *ts.list[i])
		}
	}
	return out
}

// wait waits for every task to end.
func (ts *tasks) wait() { ts.wg.Wait() }
