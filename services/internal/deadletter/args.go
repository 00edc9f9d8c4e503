package deadletter

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// The actions of the operators' command.
const (
	ActionList   = "list"
	ActionShow   = "show"
	ActionReplay = "replay"
	ActionPurge  = "purge"
)

// ErrUsage means the command line is wrong. ParseArgs's errors match it
// with errors.Is, and their text says what is wrong, without a prefix.
var ErrUsage = errors.New("usage")

// usageError is a wrong command line; it is ErrUsage.
type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == ErrUsage }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// ErrHelp means the command line asked for help (-h, --help or help).
var ErrHelp = flag.ErrHelp

// Command is one parsed command line.
type Command struct {
	Action string // one of the Action constants
	// Filter selects the jobs: IDs from the arguments, the rest from
	// --reason, --job, --older-than and --newer-than.
	Filter Filter
	All    bool   // replay, purge: --all, every dead job
	JSON   bool   // list, show: --json, one JSON object per line
	Rate   Rate   // replay: --rate, at most this many jobs a second; 0: no limit
	Queue  string // replay: --queue, where jobs without the x-fpmq-queue header go
	Yes    bool   // purge: --yes, do not ask
}

// ParseArgs parses the arguments that follow the command's name: an
// action, then its flags and arguments in any order ("--" ends the flags).
// Flags take one or two dashes. Every error matches ErrUsage or ErrHelp.
func ParseArgs(args []string) (Command, error) {
	if len(args) == 0 {
		return Command{}, usagef("missing action: list, show, replay or purge")
	}
	c := Command{Action: args[0]}
	switch c.Action {
	case "-h", "-help", "--help", "help":
		return Command{}, ErrHelp
	case ActionList, ActionShow, ActionReplay, ActionPurge:
	default:
		return Command{}, usagef("unknown action %q: want list, show, replay or purge", c.Action)
	}

	fs := flag.NewFlagSet(c.Action, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, and the caller prints the usage
	var olderThan, newerThan ageFlag
	if c.Action != ActionShow {
		fs.StringVar(&c.Filter.Reason, "reason", "", "")
		fs.StringVar(&c.Filter.Name, "job", "", "")
		fs.Var(&olderThan, "older-than", "")
		fs.Var(&newerThan, "newer-than", "")
	}
	switch c.Action {
	case ActionList, ActionShow:
		fs.BoolVar(&c.JSON, "json", false, "")
	case ActionReplay:
		fs.BoolVar(&c.All, "all", false, "")
		fs.Var(&c.Rate, "rate", "")
		fs.StringVar(&c.Queue, "queue", "", "")
	case ActionPurge:
		fs.BoolVar(&c.All, "all", false, "")
		fs.BoolVar(&c.Yes, "yes", false, "")
	}

	// The flag package stops at the first argument that is not a flag;
	// go on after it, so that flags may follow the ids.
	in := args[1:]
	for {
		if err := fs.Parse(in); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return Command{}, ErrHelp
			}
			return Command{}, usagef("%s: %v", c.Action, err)
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
			return Command{}, usagef("%s: an empty id", c.Action)
		}
	}
	return c, c.check()
}

// check enforces what each action needs.
func (c Command) check() error {
	ids := len(c.Filter.IDs) > 0
	criteria := c.Filter.Reason != "" || c.Filter.Name != "" || c.Filter.OlderThan > 0 || c.Filter.NewerThan > 0
	switch c.Action {
	case ActionList:
		if ids {
			return usagef("list takes no ids (show ID prints one job)")
		}
	case ActionShow:
		if !ids {
			return usagef("show: give the message id of a job (list prints them)")
		}
	case ActionReplay, ActionPurge:
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

// Rate is a number of jobs per second; 0 means no limit.
type Rate float64

// Interval returns the time between two jobs at rate r; 0 for no limit.
func (r Rate) Interval() time.Duration {
	if r <= 0 {
		return 0
	}
	return time.Duration(float64(time.Second) / float64(r))
}

// String formats r as Set parses it.
func (r Rate) String() string {
	if r <= 0 {
		return "0"
	}
	return strconv.FormatFloat(float64(r), 'g', -1, 64) + "/s"
}

// Set parses a rate: a positive number of jobs per second ("5", "5/s"),
// per minute ("30/m", "30/min") or per hour ("100/h").
func (r *Rate) Set(s string) error {
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
	*r = Rate(n)
	return nil
}

// ageFlag is a flag.Value for ParseAge.
type ageFlag time.Duration

func (a *ageFlag) String() string { return time.Duration(*a).String() }

func (a *ageFlag) Set(s string) error {
	d, err := ParseAge(s)
	if err != nil {
		return err
	}
	*a = ageFlag(d)
	return nil
}
