package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/phpform"
	"github.com/fpmq/fpmq/services/internal/tracing"
)

// maxDelay bounds --delay: a job meant for later than a week is more likely
// a mistake in the unit than a plan.
const maxDelay = 168 * time.Hour

// maxShortString is the longest AMQP short string: a header name, the type.
const maxShortString = 255

// payload is one job to publish.
type payload struct {
	body  []byte
	label string // how " [x] Message sent: " names it: the number, or the JSON object
}

// options are the flags, which apply to every job of a run.
type options struct {
	jobType  string        // --type: the AMQP type property, the job's name
	headers  amqp.Table    // --header K=V, string values
	delay    time.Duration // --delay
	priority uint8         // --priority
	// traceparent and tracestate: --traceparent and --tracestate, W3C
	// Trace Context (see traceParent).
	traceparent, tracestate string
	// ids: --ids, each confirmed job's line also gives its message id.
	ids bool
}

// input is what the caller was asked to publish.
type input struct {
	jobs []payload
	opts options
}

// parseInput returns the jobs to publish and the options that apply to
// them all. Jobs come from the arguments in order: a NUMBER is the job
// {"number":NUMBER}, --json OBJECT a job whose body is that JSON object;
// or, when "-" is the only one, from stdin, one a line, each a number or a
// JSON object (a trailing '\r' on a line is ignored). Flags are
// --name VALUE or --name=VALUE; "--" ends them.
//
// It reads all of stdin, so that nothing is published unless every job is
// valid. Bad input is a *usageError that names the value and where it came
// from; only a failure to read stdin is not, and comes with the jobs read
// before it. A "-" among other jobs is reported before any bad number: it
// is a mistake in how the caller is called, which fixing the numbers would
// not cure.
func parseInput(args []string, stdin io.Reader) (input, error) {
	var in input
	if len(args) == 0 {
		return in, usagef("no numbers given")
	}
	type source struct {
		value string
		index int  // in args, from 1
		json  bool // from --json
	}
	var sources []source
	dash := 0 // the index of "-", if any
	seen := map[string]bool{}
	flags := true
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if !flags || !strings.HasPrefix(arg, "--") {
			if arg == "-" && dash == 0 {
				dash = i + 1
			}
			sources = append(sources, source{arg, i + 1, false})
			continue
		}
		if arg == "--" {
			flags = false
			continue
		}
		name, value, hasValue := strings.Cut(arg[2:], "=")
		if name == "ids" {
			if hasValue {
				return in, usagef("flag --ids takes no value (argument %d)", i+1)
			}
			in.opts.ids = true
			continue
		}
		if !knownFlag(name) {
			return in, usagef("unknown flag %q (argument %d)", clip(arg), i+1)
		}
		if !hasValue {
			if i+1 == len(args) {
				return in, usagef("flag --%s needs a value (argument %d)", name, i+1)
			}
			i++
			value = args[i]
		}
		if name == "json" {
			sources = append(sources, source{value, i + 1, true})
			continue
		}
		if seen[name] && name != "header" {
			return in, usagef("flag --%s given twice (argument %d)", name, i+1)
		}
		seen[name] = true
		if err := in.opts.set(name, value, i+1); err != nil {
			return in, err
		}
	}
	if dash > 0 && len(sources) > 1 {
		return in, usagef(`"-" (read standard input) must be the only argument (argument %d)`, dash)
	}
	if dash > 0 {
		jobs, err := readJobs(stdin)
		in.jobs = jobs
		return in, err
	}
	if len(sources) == 0 {
		return in, usagef("no jobs given: NUMBER..., - or --json OBJECT")
	}
	in.jobs = make([]payload, len(sources))
	for k, s := range sources {
		var err error
		if s.json {
			in.jobs[k], err = parseObject(s.value, "--json, argument", s.index)
		} else {
			in.jobs[k], err = parseNumber(s.value, "argument", s.index)
		}
		if err != nil {
			return input{}, err
		}
	}
	return in, nil
}

func knownFlag(name string) bool {
	switch name {
	case "type", "json", "header", "delay", "priority", "traceparent", "tracestate":
		return true
	}
	return false
}

// set sets the option of flag --name, given at argument index.
func (o *options) set(name, value string, index int) error {
	switch name {
	case "type":
		if value == "" || len(value) > maxShortString {
			return usagef("invalid --type %q (argument %d): 1 to %d bytes", clip(value), index, maxShortString)
		}
		o.jobType = value
	case "header":
		k, v, ok := strings.Cut(value, "=")
		switch {
		case !ok || k == "":
			return usagef("invalid --header %q (argument %d): want NAME=VALUE", clip(value), index)
		case len(k) > maxShortString:
			return usagef("invalid --header %q (argument %d): the name is longer than %d bytes", clip(value), index, maxShortString)
		case strings.HasPrefix(strings.ToLower(k), "x-fpmq-"):
			return usagef("invalid --header %q (argument %d): x-fpmq- headers are the daemon's", clip(value), index)
		}
		if o.headers == nil {
			o.headers = amqp.Table{}
		}
		if _, dup := o.headers[k]; dup {
			return usagef("invalid --header %q (argument %d): %s given twice", clip(value), index, clip(k))
		}
		o.headers[k] = v
	case "delay":
		d, err := time.ParseDuration(value)
		if err != nil || d < 0 || d > maxDelay {
			return usagef("invalid --delay %q (argument %d): want a duration from 0s to %s, such as 30s or 2h", clip(value), index, maxDelay)
		}
		o.delay = d
	case "priority":
		p, err := strconv.ParseUint(value, 10, 8)
		if err != nil {
			return usagef("invalid --priority %q (argument %d): want 0 to 255", clip(value), index)
		}
		o.priority = uint8(p)
	case "traceparent":
		if _, err := tracing.Parse(value, ""); err != nil {
			return usagef("invalid --traceparent (argument %d): %v", index, err)
		}
		o.traceparent = value
	case "tracestate":
		o.tracestate = value
	}
	return nil
}

// readJobs reads one job per line from r: a number, or a JSON object if the
// line starts with '{'. A line may be at most bufio.MaxScanTokenSize-1
// bytes long, '\r' included.
func readJobs(r io.Reader) ([]payload, error) {
	var jobs []payload
	sc := bufio.NewScanner(r)
	line := 0
	// bufio.ScanLines already drops the '\r' of a "\r\n" line end, and of
	// a last line without '\n'.
	for sc.Scan() {
		line++
		var p payload
		var err error
		if text := sc.Text(); strings.HasPrefix(text, "{") {
			p, err = parseObject(text, "stdin line", line)
		} else {
			p, err = parseNumber(text, "stdin line", line)
		}
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, p)
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		return nil, usagef("invalid number (stdin line %d): line too long", line+1)
	} else if err != nil {
		return jobs, fmt.Errorf("read standard input: %w", err)
	}
	if line == 0 {
		return nil, usagef("no numbers on standard input")
	}
	return jobs, nil
}

// parseNumber parses s as a base-10 int64 and returns the job
// {"number":N}; where and index say where s came from, for the error.
func parseNumber(s, where string, index int) (payload, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	// ParseInt reports a range error as soon as the digits overflow, even
	// if a character that is not a digit follows.
	if errors.Is(err, strconv.ErrRange) && isDecimal(s) {
		return payload{}, usagef("invalid number %q (%s %d): out of the int64 range", clip(s), where, index)
	}
	if err != nil {
		return payload{}, usagef("invalid number %q (%s %d)", clip(s), where, index)
	}
	return payload{body: phpform.Marshal(n), label: strconv.FormatInt(n, 10)}, nil
}

// parseObject returns the job whose body is the JSON object s, compacted;
// where and index say where s came from, for the error.
func parseObject(s, where string, index int) (payload, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(s)); err != nil {
		return payload{}, usagef("invalid JSON object %q (%s %d): %v", clip(s), where, index, err)
	}
	if buf.Len() == 0 || buf.Bytes()[0] != '{' {
		return payload{}, usagef("invalid JSON object %q (%s %d): not an object", clip(s), where, index)
	}
	return payload{body: buf.Bytes(), label: buf.String()}, nil
}

// isDecimal tells whether s is an optional sign and one or more ASCII
// digits.
func isDecimal(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// clip shortens s for an error message.
func clip(s string) string {
	const limit = 40
	if len(s) > limit {
		return s[:limit] + "..."
	}
	return s
}
