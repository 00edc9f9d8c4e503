// Package journal keeps, in a daemon's memory, what the console shows of
// its recent jobs: the last failed attempts, each with the script's
// stderr, and figures per job name (the AMQP type property), the way
// Laravel Horizon's "metrics by job" counts them.
package journal

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/fpmq/fpmq/services/internal/outcome"
)

// OtherNames is the name under which jobs are counted once MaxNames
// names are known: a bound on memory when names are many or forged.
const OtherNames = "(other names)"

// Failure is one failed attempt: retried or dead-lettered.
type Failure struct {
	At        time.Time `json:"at"`
	MessageID string    `json:"message_id"`
	Name      string    `json:"name"` // the AMQP type property; "" when it has none
	Attempt   int       `json:"attempt"`
	Outcome   string    `json:"outcome"`          // "retried" or "dead-lettered"
	Reason    string    `json:"reason,omitempty"` // the dead-letter reason
	Status    int       `json:"status"`           // the script's HTTP status; 0 without an answer
	Error     string    `json:"error,omitempty"`
	// Stderr is the start of what the script wrote to its FastCGI stderr
	// (outcome.Result.Stderr).
	Stderr string `json:"stderr,omitempty"`
}

// Name is the figures of one job name since the daemon started.
type Name struct {
	Name         string    `json:"name"`
	Succeeded    int64     `json:"succeeded"`
	Failed       int64     `json:"failed"` // attempts retried or dead-lettered
	DeadLettered int64     `json:"dead_lettered"`
	Runs         int64     `json:"runs"`        // attempts sent to php-fpm
	RunSeconds   float64   `json:"run_seconds"` // their time in php-fpm, summed
	MaxRun       float64   `json:"max_run_seconds"`
	Last         time.Time `json:"last"`
}

// Journal is safe for concurrent use; the zero value keeps nothing: use New.
type Journal struct {
	mu       sync.Mutex
	failures []Failure // a ring of cap MaxFailures
	next     int       // where the next failure goes once the ring is full
	names    map[string]*Name
	maxNames int
}

// New returns a journal keeping the last maxFailures failed attempts and
// the figures of at most maxNames job names (more are counted under
// OtherNames).
func New(maxFailures, maxNames int) *Journal {
	return &Journal{failures: make([]Failure, 0, maxFailures), names: map[string]*Name{}, maxNames: maxNames}
}

// Observe records one delivery's result at time at: the attempt's name
// figures, and the attempt itself if it failed. Results that ran no
// attempt of the job's (requeued, delayed, already done) count nothing.
func (j *Journal) Observe(messageID, name string, res outcome.Result, at time.Time) {
	switch res.Outcome {
	case outcome.Succeeded, outcome.Retried, outcome.DeadLettered:
	default:
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	n := j.name(name)
	n.Last = at
	switch res.Outcome {
	case outcome.Succeeded:
		n.Succeeded++
	case outcome.DeadLettered:
		n.DeadLettered++
		n.Failed++
	default:
		n.Failed++
	}
	if res.Ran {
		n.Runs++
		s := res.WorkerTime.Seconds()
		n.RunSeconds += s
		n.MaxRun = max(n.MaxRun, s)
	}
	if res.Outcome == outcome.Succeeded || cap(j.failures) == 0 {
		return
	}
	f := Failure{At: at, MessageID: messageID, Name: name, Attempt: res.Attempt, Outcome: res.Outcome.String(),
		Status: res.Status, Stderr: res.Stderr}
	if res.Outcome == outcome.DeadLettered {
		f.Reason = res.Reason
	}
	if res.Err != nil {
		f.Error = outcome.Excerpt(res.Err.Error())
	}
	if len(j.failures) < cap(j.failures) {
		j.failures = append(j.failures, f)
		return
	}
	j.failures[j.next] = f
	j.next = (j.next + 1) % len(j.failures)
}

// name returns the figures of name, adding them if there is room; j.mu
// is held.
func (j *Journal) name(name string) *Name {
	if n := j.names[name]; n != nil {
		return n
	}
	if len(j.names) >= j.maxNames {
		name = OtherNames
		if n := j.names[name]; n != nil {
			return n
		}
	}
	n := &Name{Name: name}
	j.names[name] = n
	return n
}

// Failures returns the failed attempts kept, the newest first.
func (j *Journal) Failures() []Failure {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]Failure, 0, len(j.failures))
	for i := range j.failures {
		// Oldest at j.next once the ring is full, at 0 before.
		out = append(out, j.failures[(j.next+i)%len(j.failures)])
	}
	slices.Reverse(out)
	return out
}

// Names returns the figures of every job name seen, by name, OtherNames
// last.
func (j *Journal) Names() []Name {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]Name, 0, len(j.names))
	for _, n := range j.names {
		out = append(out, *n)
	}
	slices.SortFunc(out, func(a, b Name) int {
		last := func(n Name) int {
			if n.Name == OtherNames {
				return 1
			}
			return 0
		}
		return cmp.Or(cmp.Compare(last(a), last(b)), cmp.Compare(a.Name, b.Name))
	})
	return out
}
