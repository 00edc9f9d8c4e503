package deadletter

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
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

// ParseAge parses a positive age: a Go duration ("90m", "1h30m"), or a
// number of days ("7d") that a Go duration may follow ("1d12h").
func ParseAge(s string) (time.Duration, error) {
	var days time.Duration
	rest := s
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseUint(s[:i], 10, 32)
		if err != nil {
			return 0, fmt.Errorf("age %q: want a duration such as 90m, 36h or 7d", s)
		}
		if n > math.MaxInt64/uint64(24*time.Hour) {
			return 0, fmt.Errorf("age %q: too long", s)
		}
		days, rest = time.Duration(n)*24*time.Hour, s[i+1:]
	}
	var d time.Duration
	if rest != "" || days == 0 {
		var err error
		if d, err = time.ParseDuration(rest); err != nil {
			return 0, fmt.Errorf("age %q: want a duration such as 90m, 36h or 7d", s)
		}
	}
	if d < 0 || d > math.MaxInt64-days || d+days <= 0 {
		return 0, fmt.Errorf("age %q: must be positive", s)
	}
	return days + d, nil
}
