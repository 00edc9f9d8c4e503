package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/broker"
	"github.com/fpmq/fpmq/services/internal/progress"
)

// Exit statuses of run.
const (
	exitOK      = 0 // every job was confirmed
	exitFailure = 1 // some job was not confirmed
	exitUsage   = 2 // bad arguments, input or configuration: nothing was published
)

// config is the caller's configuration, read from the environment only.
type config struct {
	URL       string        `envconfig:"AMQP_URL" required:"true" desc:"RabbitMQ URL, e.g. amqp://user:pass@rabbitmq:5672/"`
	CAFile    string        `envconfig:"AMQP_CA_FILE" desc:"PEM file of the CA certificates that verify RabbitMQ over amqps:// (default: the system's)"`
	CertFile  string        `envconfig:"AMQP_CERT_FILE" desc:"PEM client certificate to present over amqps://, with AMQP_KEY_FILE (optional)"`
	KeyFile   string        `envconfig:"AMQP_KEY_FILE" desc:"PEM private key of AMQP_CERT_FILE"`
	Queue     string        `envconfig:"AMQP_QUEUE" default:"commands" desc:"durable queue that the jobs are published to"`
	QueueType string        `envconfig:"AMQP_QUEUE_TYPE" default:"classic" desc:"type of the job queue: classic, or quorum for a RabbitMQ cluster; must match the daemon's"`
	Timeout   time.Duration `envconfig:"CALLER_TIMEOUT" default:"10s" desc:"bound on the whole run: connecting, reconnecting and waiting for every publisher confirm"`

	tls *tls.Config // from AMQP_CA_FILE, AMQP_CERT_FILE and AMQP_KEY_FILE, set by loadConfig
}

// usageError is a mistake in the arguments, standard input or environment.
// run answers it with exit status 2 and the usage text, without connecting.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// run is the whole caller; main only wires it to the process. It checks all
// the input and the configuration before it connects, publishes one job
// {"number":N} per number with publisher confirms, and prints
// " [x] Message sent: N" for each job once the broker has confirmed it. It
// returns the exit status: 0 when every job was confirmed, 1 when some job
// was not, 2 for a usage error (then nothing was published).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if slices.ContainsFunc(args, isHelp) {
		printUsage(stdout)
		return exitOK
	}
	numbers, err := parseInput(args, stdin)
	var cfg config
	if err == nil {
		cfg, err = loadConfig()
	}
	if ue := (*usageError)(nil); errors.As(err, &ue) {
		fmt.Fprintf(stderr, "caller: %v\n\n", err)
		printUsage(stderr)
		return exitUsage
	}
	confirmed := 0
	if err == nil {
		confirmed, err = publish(ctx, cfg, numbers, stdout, progress.OnTerminal(stderr))
	}
	if err != nil {
		// Every failure says how many jobs got through, the ones before
		// any was published too: a script can rely on the last words.
		fmt.Fprintf(stderr, "caller: %v (%d of %d jobs confirmed)\n", err, confirmed, len(numbers))
		return exitFailure
	}
	return exitOK
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help"
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  caller NUMBER...   publish a job {"number":NUMBER} for each NUMBER
  caller -           publish a job for each line of standard input, one number a line

Every NUMBER must be a base-10 integer within int64, and all of them are checked
before anything is published. " [x] Message sent: NUMBER" is printed, in input
order, once the broker has confirmed that job. If the connection is lost, the
caller reconnects within CALLER_TIMEOUT and publishes the unconfirmed jobs again
with the same message ID. On a terminal, a line on standard error shows the
progress of a run that lasts. Exit status: 0 when every job was confirmed, 1
when some job was not (the error ends with "(k of n jobs confirmed)"), 2 for a
usage error.

`)
	tw := tabwriter.NewWriter(w, 1, 0, 4, ' ', 0)
	if err := envconfig.Usagef("", &config{}, tw, envconfig.DefaultTableFormat); err != nil {
		fmt.Fprintf(tw, "(cannot list the environment variables: %v)\n", err)
	}
	tw.Flush()
}

// loadConfig reads the configuration from the environment. Every mistake in
// it is a *usageError that names the variable.
func loadConfig() (config, error) {
	var cfg config
	if err := envconfig.Process("", &cfg); err != nil {
		return cfg, usagef("configuration: %v", err)
	}
	if cfg.URL == "" {
		return cfg, usagef("configuration: AMQP_URL is empty")
	}
	if _, err := amqp.ParseURI(cfg.URL); err != nil {
		// A url.Error quotes the whole URL, password included.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return cfg, usagef("configuration: AMQP_URL %s is not an AMQP URL: %v", broker.Redact(cfg.URL), err)
	}
	if cfg.Queue == "" {
		return cfg, usagef("configuration: AMQP_QUEUE is empty")
	}
	if err := broker.CheckQueueType(cfg.QueueType); err != nil {
		return cfg, usagef("configuration: AMQP_QUEUE_TYPE: %v", err)
	}
	if cfg.Timeout <= 0 {
		return cfg, usagef("configuration: CALLER_TIMEOUT must be positive, not %s", cfg.Timeout)
	}
	tc, err := broker.TLSConfigFor(cfg.URL, broker.TLSFiles{CAFile: cfg.CAFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile})
	if err != nil {
		return cfg, usagef("configuration: %v", err)
	}
	cfg.tls = tc
	return cfg, nil
}
