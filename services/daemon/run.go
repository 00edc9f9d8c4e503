package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/kelseyhightower/envconfig"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/broker"
	"github.com/fpmq/fpmq/services/internal/consume"
	"github.com/fpmq/fpmq/services/internal/dispatch"
	"github.com/fpmq/fpmq/services/internal/fastcgi"
	"github.com/fpmq/fpmq/services/internal/logging"
)

const usage = `Usage: daemon

Consumes jobs from a RabbitMQ queue and runs each one on a php-fpm pool over
FastCGI. A job is acknowledged once the worker answered 2xx; a failed attempt
is retried later through a retry queue, up to MAX_ATTEMPTS; a job that can
never succeed goes to the dead-letter queue. SIGTERM or SIGINT stops taking
jobs and waits for the running ones.

Configuration, from environment variables:
`

// run is the daemon's whole life; it returns the process exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help", "help":
			printUsage(stdout)
			return 0
		default:
			fmt.Fprintf(stderr, "daemon: unknown argument %q\n\n", args[0])
			printUsage(stderr)
			return 2
		}
	}

	cfg, err := loadConfig()
	if err != nil {
		fmt.Fprintf(stderr, "daemon: configuration: %v\n(see daemon -h)\n", err)
		return 2
	}
	log, err := logging.New(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		fmt.Fprintf(stderr, "daemon: configuration: LOG_LEVEL/LOG_FORMAT: %v\n", err)
		return 2
	}
	client, err := fastcgi.NewClient(cfg.FastCGIAddr)
	if err != nil {
		fmt.Fprintf(stderr, "daemon: configuration: FASTCGI_ADDR: %v\n", err)
		return 2
	}

	log.Info().
		Str("amqp_url", broker.Redact(cfg.AMQPURL)).
		Str("queue", cfg.Queue).
		Str("fastcgi_addr", cfg.FastCGIAddr).
		Str("script", cfg.ScriptFilename).
		Int("concurrency", cfg.Concurrency).
		Int("max_attempts", cfg.MaxAttempts).
		Str("dead_letter_queue", cfg.DeadQueue).
		Msg("daemon starting")

	topology := cfg.topology()
	d := dispatch.New(client, dispatch.Config{
		Script:         cfg.ScriptFilename,
		Timeout:        cfg.RequestTimeout,
		MaxAttempts:    cfg.MaxAttempts,
		MaxMessageSize: cfg.MaxMessageSize,
		Topology:       topology,
		FailurePause:   cfg.RetryInitial,
		PingPath:       cfg.PingPath,
	}, log)
	handle := func(ctx context.Context, m amqp.Delivery, pub *broker.Publisher) error {
		res := d.Handle(ctx, m, pub)
		if errors.Is(res.Err, dispatch.ErrPoolUnavailable) {
			return consume.ErrBackendDown
		}
		return nil
	}
	c := consume.New(consume.Config{
		URL:             cfg.AMQPURL,
		Topology:        topology,
		Concurrency:     cfg.Concurrency,
		Prefetch:        cfg.Prefetch,
		ShutdownTimeout: cfg.ShutdownTimeout,
		ConnectTimeout:  cfg.ConnectTimeout,
		ReconnectMax:    cfg.ReconnectMax,
		Probe:           func(ctx context.Context) error { return d.Ping(ctx, cfg.PingPath) },
	}, handle, log)

	if err := c.Run(ctx); err != nil {
		log.Error().Err(err).Msg("daemon stopped")
		return 1
	}
	log.Info().Msg("daemon stopped")
	return 0
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, usage)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	envconfig.Usagef("", &config{}, tw, envTable)
	tw.Flush()
}

// envTable lists each variable with its default and description.
const envTable = `  VARIABLE	DEFAULT	DESCRIPTION
{{range .}}  {{usage_key .}}	{{usage_default .}}	{{usage_description .}}
{{end}}`
