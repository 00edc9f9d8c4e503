package deadletter

import (
	"slices"
	"time"
)

// Filter selects dead jobs. The zero Filter selects every job; each field
// that is set narrows the selection, and a job must pass all of them.
type Filter struct {
	IDs       []string      // message ids: the job's must be one of them
	Reason    string        // the dead-letter reason, exactly
	Name      string        // the job's name (the AMQP type property), exactly
	OlderThan time.Duration // published more than this long ago; 0: no bound
	NewerThan time.Duration // published less than this long ago; 0: no bound
}

// IsZero reports whether f selects every job.
func (f Filter) IsZero() bool {
	return len(f.IDs) == 0 && f.Reason == "" && f.Name == "" && f.OlderThan == 0 && f.NewerThan == 0
}

// Match reports whether j passes f at the time now. A job without a
// timestamp has no age: it fails OlderThan and NewerThan alike.
func (f Filter) Match(j Job, now time.Time) bool {
	if len(f.IDs) > 0 && !slices.Contains(f.IDs, j.ID) {
		return false
	}
	if f.Reason != "" && j.Reason != f.Reason {
		return false
	}
	if f.Name != "" && j.Name != f.Name {
		return false
	}
	if f.OlderThan > 0 || f.NewerThan > 0 {
		age := j.Age(now)
		if age < 0 {
			return false
		}
		if f.OlderThan > 0 && age <= f.OlderThan {
			return false
		}
		if f.NewerThan > 0 && age >= f.NewerThan {
			return false
		}
	}
	return true
}
