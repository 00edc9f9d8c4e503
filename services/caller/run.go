package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/kelseyhightower/envconfig"
	"go.opentelemetry.io/otel/trace"

	"github.com/fpmq/fpmq/services/internal/amqpconfig"
	"github.com/fpmq/fpmq/services/internal/broker"
	"github.com/fpmq/fpmq/services/internal/envhelp"
	"github.com/fpmq/fpmq/services/internal/progress"
	"github.com/fpmq/fpmq/services/internal/tracing"
)

// Exit statuses of run.
const (
	exitOK      = 0 // every job was confirmed
	exitFailure = 1 // some job was not confirmed
	exitUsage   = 2 // bad arguments, input or configuration: nothing was published
)

// config is the caller's configuration, read from the environment only.
type config struct {
	amqpconfig.Settings // AMQP_URL, AMQP_ADDRESSES and the TLS files

	Queue       string        `envconfig:"AMQP_QUEUE" default:"commands" desc:"durable queue that the jobs are published to"`
	QueueType   string        `envconfig:"AMQP_QUEUE_TYPE" default:"classic" desc:"type of the job queue: classic, or quorum for a RabbitMQ cluster; must match the daemon's"`
	MaxPriority int           `envconfig:"AMQP_MAX_PRIORITY" default:"0" desc:"above 0, a classic job queue is declared with x-max-priority (see --priority); must match the daemon's"`
	DelayMax    time.Duration `envconfig:"DELAY_MAX" default:"168h" desc:"the daemon's DELAY_MAX: a job published with --delay waits in the delay queue of the largest power of two seconds not above the delay and DELAY_MAX"`
	Timeout     time.Duration `envconfig:"CALLER_TIMEOUT" default:"10s" desc:"bound on the whole run: connecting, reconnecting and waiting for every publisher confirm; past it the caller exits 1"`
	Traceparent string        `envconfig:"TRACEPARENT" desc:"a W3C traceparent whose trace the jobs join (--traceparent wins): each job's span is its child, or with tracing off the jobs carry it unchanged; empty: a new trace per job, or none with tracing off"`
	Tracestate  string        `envconfig:"TRACESTATE" desc:"the W3C tracestate that goes with TRACEPARENT"`

	tracing.Env // OTEL_*: tracing, off by default; see "Tracing" in the daemon's README

	tls   *tls.Config // from AMQP_CA_FILE, AMQP_CERT_FILE and AMQP_KEY_FILE, set by loadConfig
	nodes []string    // the broker URLs of AMQP_URL and AMQP_ADDRESSES, set by loadConfig
	// parent is the trace context the jobs join, from TRACEPARENT or
	// --traceparent (set by run); invalid when none was given.
	parent trace.SpanContext
	// tracer makes the jobs' spans (set by run); nil when tracing is off.
	tracer trace.Tracer
}

// usageError is a mistake in the arguments, standard input or environment.
// run answers it with exit status 2 and the usage text, without connecting.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// run is the whole caller; main only wires it to the process. It checks all
// the input and the configuration before it connects, publishes each job
// (see parseInput) with publisher confirms, and prints
// " [x] Message sent: N" (or the JSON object) for each job once the broker
// has confirmed it. It
// returns the exit status: 0 when every job was confirmed, 1 when some job
// was not, 2 for a usage error (then nothing was published). clock, which
// only tests pass, changes how it waits (see publish).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, clock ...clockOption) int {
	if slices.ContainsFunc(args, isHelp) {
		printUsage(stdout)
		return exitOK
	}
	in, err := parseInput(args, stdin)
	var cfg config
	if err == nil {
		cfg, err = loadConfig()
	}
	if err == nil {
		cfg.parent, err = traceParent(cfg, in.opts)
	}
	var spans *tracing.Provider
	if err == nil {
		spans, err = startTracing(&cfg)
	}
	if ue := (*usageError)(nil); errors.As(err, &ue) {
		fmt.Fprintf(stderr, "caller: %v\n%s", err, synopsis)
		return exitUsage
	}
	confirmed := 0
	if err == nil {
		confirmed, err = publish(ctx, cfg, in, stdout, progress.OnTerminal(stderr), clock...)
		// Before the failure line, which must stay the last words.
		flushSpans(spans, stderr)
	}
	if err != nil {
		// Every failure says how many jobs got through, the ones before
		// any was published too: a script can rely on the last words.
		fmt.Fprintf(stderr, "caller: %v (%d of %d jobs confirmed)\n", err, confirmed, len(in.jobs))
		return exitFailure
	}
	return exitOK
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help"
}

// synopsis follows a usage error: the forms of the command, and where the
// rest is.
const synopsis = "usage: caller [FLAGS] NUMBER... | caller [FLAGS] --json OBJECT | caller [FLAGS] -\n" +
	"       (caller -h: the flags and the environment variables)\n"

func printUsage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  caller [FLAGS] NUMBER...         publish a job {"number":NUMBER} for each NUMBER
  caller [FLAGS] --json OBJECT     publish a job whose body is the JSON OBJECT
  caller [FLAGS] -                 publish a job for each line of standard input:
                                   a number, or a JSON object
Flags, for every job of the run:
  --type NAME        the job's name (the AMQP type; the worker's HTTP_X_JOB_NAME)
  --header K=V       a header (the worker's HTTP_X_HEADER_K); repeatable
  --delay DURATION   run no earlier than DURATION from now (30s, 2h; at most 168h);
                     held in RabbitMQ's delay queues, which the daemon declares
  --priority N       the message priority, 0 to 255 (needs AMQP_MAX_PRIORITY on a
                     classic queue; RabbitMQ 4 quorum queues: above 4 is high)
  --traceparent TP   a W3C traceparent whose trace the jobs join (instead of
                     TRACEPARENT); --tracestate TS goes with it
  --ids              each job's line also gives its message id, by which the
                     console finds the job's dead letter or trace

Every NUMBER must be a base-10 integer within int64, every OBJECT a JSON
object, and all of them are checked before anything is published.
" [x] Message sent: NUMBER" (or OBJECT) is printed, in input order, once the
broker has confirmed that job (to a pipe or a file: in batches, written whenever
the caller waits for the broker and at the end). If the connection is lost, the caller reconnects
within CALLER_TIMEOUT (to the next node of AMQP_ADDRESSES, if set) and publishes
the unconfirmed jobs again with the same message ID: a job may then be queued
twice, never lost. On a terminal, a line on standard error shows the progress of a run
that lasts. Exit status: 0 when every job was confirmed, 1 when some job was not
(the error ends with "(k of n jobs confirmed)"), 2 for a usage error.

`)
	if err := envhelp.Print(w, &config{}); err != nil {
		fmt.Fprintf(w, "(%v)\n", err)
	}
}

// loadConfig reads the configuration from the environment. Every mistake in
// it is a *usageError that names the variable.
func loadConfig() (config, error) {
	var cfg config
	if err := envconfig.Process("", &cfg); err != nil {
		return cfg, usagef("configuration: %v", err)
	}
	var err error
	// An empty password is left to RabbitMQ to refuse, as it always was.
	if cfg.nodes, cfg.tls, err = cfg.Settings.Check(""); err != nil {
		return cfg, usagef("configuration: %v", err)
	}
	if cfg.Queue == "" {
		return cfg, usagef("configuration: AMQP_QUEUE is empty")
	}
	if err := broker.CheckQueueType(cfg.QueueType); err != nil {
		return cfg, usagef("configuration: AMQP_QUEUE_TYPE: %v", err)
	}
	if cfg.MaxPriority < 0 || cfg.MaxPriority > broker.MaxPriority {
		return cfg, usagef("configuration: AMQP_MAX_PRIORITY must be 0 to %d, not %d", broker.MaxPriority, cfg.MaxPriority)
	}
	if cfg.DelayMax < time.Second {
		return cfg, usagef("configuration: DELAY_MAX must be at least 1s, not %s", cfg.DelayMax)
	}
	if cfg.Timeout <= 0 {
		return cfg, usagef("configuration: CALLER_TIMEOUT must be positive, not %s", cfg.Timeout)
	}
	if err := cfg.Env.Check(); err != nil {
		return cfg, usagef("configuration: %v", err)
	}
	return cfg, nil
}

// traceParent returns the trace context the jobs join: --traceparent
// with --tracestate, else TRACEPARENT with TRACESTATE; an invalid one when
// neither is given. A malformed one is a *usageError.
func traceParent(cfg config, o options) (trace.SpanContext, error) {
	name, tp, ts := "TRACEPARENT", cfg.Traceparent, cfg.Tracestate
	if o.traceparent != "" {
		name, tp, ts = "--traceparent", o.traceparent, o.tracestate
	}
	if tp == "" {
		return trace.SpanContext{}, nil
	}
	sc, err := tracing.Parse(tp, ts)
	if err != nil {
		return sc, usagef("invalid %s %v", name, err)
	}
	return sc, nil
}
