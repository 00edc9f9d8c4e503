package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/fpmq/fpmq/services/internal/deadletter"
)

// The actions of "daemon dead".
const (
	actionList   = "list"
	actionShow   = "show"
	actionReplay = "replay"
	actionPurge  = "purge"
)

// errUsage means the command line is wrong. parseDeadArgs's errors match
// it with errors.Is, and their text says what is wrong, without a prefix.
var errUsage = errors.New("usage")

// usageError is a wrong command line; it is errUsage.
type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == errUsage }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// deadArgs is one parsed command line of "daemon dead".
type deadArgs struct {
	Action string // one of the action constants
	// Filter selects the jobs: IDs from the arguments, the rest from
	// --reason, --job, --older-than and --newer-than.
	Filter deadletter.Filter
	All    bool            // replay, purge: --all, every dead job
	JSON   bool            // list, show: --json, one JSON object per line
	Rate   deadletter.Rate // replay: --rate, at most this many jobs a second; 0: no limit
	Queue  string          // replay: --queue, where jobs without the x-fpmq-queue header go
	Yes    bool            // purge: --yes, do not ask
}

// parseDeadArgs parses the arguments that follow "dead": an action, then
// its flags and arguments in any order ("--" ends the flags). Flags take
// one or two dashes. Every error matches errUsage, or is flag.ErrHelp for
// -h, --help or help.
func parseDeadArgs(args []string) (deadArgs, error) {
	if len(args) == 0 {
		return deadArgs{}, usagef("missing action: list, show, replay or purge")
	}
	c := deadArgs{Action: args[0]}
	switch c.Action {
	case "-h", "-help", "--help", "help":
		return deadArgs{}, flag.ErrHelp
	case actionList, actionShow, actionReplay, actionPurge:
	default:
		return deadArgs{}, usagef("unknown action %q: want list, show, replay or purge", c.Action)
	}

	fs := flag.NewFlagSet(c.Action, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, and the caller prints the usage
	var olderThan, newerThan ageFlag
	if c.Action != actionShow {
		fs.StringVar(&c.Filter.Reason, "reason", "", "")
		fs.StringVar(&c.Filter.Name, "job", "", "")
		fs.Var(&olderThan, "older-than", "")
		fs.Var(&newerThan, "newer-than", "")
	}
	switch c.Action {
	case actionList, actionShow:
		fs.BoolVar(&c.JSON, "json", false, "")
	case actionReplay:
		fs.BoolVar(&c.All, "all", false, "")
		fs.Var((*rateFlag)(&c.Rate), "rate", "")
		fs.StringVar(&c.Queue, "queue", "", "")
	case actionPurge:
		fs.BoolVar(&c.All, "all", false, "")
		fs.BoolVar(&c.Yes, "yes", false, "")
	}

	// The flag package stops at the first argument that is not a flag;
	// go on after it, so that flags may follow the ids.
	in := args[1:]
	for {
		if err := fs.Parse(in); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return deadArgs{}, flag.ErrHelp
			}
			return deadArgs{}, usagef("%s: %v", c.Action, err)
		}
		left := fs.Args()
		if len(left) == 0 {
			break
		}
		if parsed := len(in) - len(left); parsed > 0 && in[parsed-1] == "--" {
			c.Filter.IDs = append(c.Filter.IDs, left...) // all ids after "--"
			break
		}
		c.Filter.IDs = append(c.Filter.IDs, left[0])
		in = left[1:]
	}
	c.Filter.OlderThan, c.Filter.NewerThan = time.Duration(olderThan), time.Duration(newerThan)
	for _, id := range c.Filter.IDs {
		if id == "" {
			return deadArgs{}, usagef("%s: an empty id", c.Action)
		}
	}
	return c, c.check()
}

// check enforces what each action needs.
func (c deadArgs) check() error {
	ids := len(c.Filter.IDs) > 0
	criteria := c.Filter.Reason != "" || c.Filter.Name != "" || c.Filter.OlderThan > 0 || c.Filter.NewerThan > 0
	switch c.Action {
	case actionList:
		if ids {
			return usagef("list takes no ids (show ID prints one job)")
		}
	case actionShow:
		if !ids {
			return usagef("show: give the message id of a job (list prints them)")
		}
	case actionReplay, actionPurge:
		kinds := 0
		for _, b := range []bool{ids, c.All, criteria} {
			if b {
				kinds++
			}
		}
		switch {
		case kinds == 0:
			return usagef("%s: say which jobs: ids, --all, or --reason, --job, --older-than, --newer-than", c.Action)
		case kinds > 1:
			return usagef("%s: give ids, --all, or filters, not several of them", c.Action)
		}
	}
	if c.Filter.OlderThan > 0 && c.Filter.NewerThan > 0 && c.Filter.NewerThan <= c.Filter.OlderThan {
		return usagef("%s: --newer-than %s and --older-than %s select nothing", c.Action, c.Filter.NewerThan, c.Filter.OlderThan)
	}
	return nil
}

// rateFlag is the flag.Value of --rate.
type rateFlag deadletter.Rate

// String formats r as Set parses it.
func (r *rateFlag) String() string {
	if *r <= 0 {
		return "0"
	}
	return strconv.FormatFloat(float64(*r), 'g', -1, 64) + "/s"
}

// Set parses a rate: a positive number of jobs per second ("5", "5/s"),
// per minute ("30/m", "30/min") or per hour ("100/h").
func (r *rateFlag) Set(s string) error {
	num, unit, _ := strings.Cut(s, "/")
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || !(n > 0 && n <= 1e6) { // NaN fails too
		return fmt.Errorf("rate %q: want a positive number of jobs per second, such as 10/s or 30/m", s)
	}
	switch unit {
	case "", "s", "sec":
	case "m", "min":
		n /= 60
	case "h":
		n /= 3600
	default:
		return fmt.Errorf("rate %q: unknown unit %q: want /s, /m or /h", s, unit)
	}
	*r = rateFlag(n)
	return nil
}

// ageFlag is the flag.Value of --older-than and --newer-than: see
// parseAge.
type ageFlag time.Duration

func (a *ageFlag) String() string { return time.Duration(*a).String() }

func (a *ageFlag) Set(s string) error {
	d, err := parseAge(s)
	if err != nil {
		return err
	}
	*a = ageFlag(d)
	return nil
}

// parseAge parses a positive age: a Go duration ("90m", "1h30m"), or a
// number of days ("7d") that a Go duration may follow ("1d12h").
func parseAge(s string) (time.Duration, error) {
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
