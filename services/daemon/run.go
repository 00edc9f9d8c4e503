package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/rs/zerolog"

	"github.com/fpmq/fpmq/services/internal/broker"
	"github.com/fpmq/fpmq/services/internal/consume"
	"github.com/fpmq/fpmq/services/internal/dispatch"
	"github.com/fpmq/fpmq/services/internal/fastcgi"
	"github.com/fpmq/fpmq/services/internal/logging"
	"github.com/fpmq/fpmq/services/internal/metrics"
)

const usage = `Usage: daemon [healthcheck [live|ready]]

Consumes jobs from a RabbitMQ queue and runs each one on a php-fpm pool over
FastCGI. A job is acknowledged once the worker answered 2xx; a failed attempt
is retried later through a retry queue, up to MAX_ATTEMPTS; a job that can
never succeed goes to the dead-letter queue. SIGTERM or SIGINT stops taking
jobs and waits for the running ones.

"daemon healthcheck" asks a running daemon's /readyz (or /healthz with
"live") on METRICS_ADDR and exits 0 if it is ready, 1 if not: the image has
no other tools for a container health check.

Configuration, from environment variables:
`

// run is the daemon's whole life; it returns the process exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help", "help":
			printUsage(stdout)
			return 0
		case "healthcheck":
			return healthcheck(ctx, args[1:], stdout, stderr)
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
	if cfg.KeepAlive {
		// An idle kept connection still pins a php-fpm child; let it go
		// soon when jobs stop.
		client.KeepAlive(cfg.Concurrency, 2*time.Second)
		defer client.CloseIdle()
	}
	var ln net.Listener
	if cfg.MetricsAddr != "" {
		if ln, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			fmt.Fprintf(stderr, "daemon: METRICS_ADDR: %v\n", err)
			return 1
		}
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

	d, c, m, lastAnswer := assemble(cfg, client, log)
	var served chan error
	if ln != nil {
		handler := metrics.Handler(m, health(c, d, cfg.PingPath, lastAnswer), cfg.Pprof)
		serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
		defer stopServing()
		served = make(chan error, 1)
		go func() { served <- metrics.Serve(serveCtx, ln, handler, log) }()
		// Health and metrics stay up while the consumer drains.
		defer func() {
			stopServing()
			if err := <-served; err != nil {
				log.Warn().Err(err).Msg("metrics server")
			}
		}()
	}

	if err := c.Run(ctx); err != nil {
		log.Error().Err(err).Msg("daemon stopped")
		return 1
	}
	log.Info().Msg("daemon stopped")
	return 0
}

// assemble builds the dispatcher, the consumer that feeds it, and the
// metrics that watch both.
func assemble(cfg config, client *fastcgi.Client, log zerolog.Logger) (*dispatch.Dispatcher, *consume.Consumer, *metrics.Metrics, *atomic.Int64) {
	// lastAnswer is when php-fpm last answered a job (Unix nanoseconds):
	// readiness needs no ping while jobs get answers.
	lastAnswer := new(atomic.Int64)
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

	var m *metrics.Metrics
	handle := func(ctx context.Context, msg amqp.Delivery, pub *broker.Publisher) error {
		done := m.Started(msg.Timestamp)
		res := d.Handle(ctx, msg, pub)
		done(res)
		if res.Status != 0 {
			lastAnswer.Store(time.Now().UnixNano())
		}
		if errors.Is(res.Err, dispatch.ErrPoolUnavailable) {
			return consume.ErrBackendDown
		}
		return nil
	}
	c := consume.New(consume.Config{
		URL:             cfg.AMQPURL,
		TLS:             cfg.tls,
		Topology:        topology,
		Concurrency:     cfg.Concurrency,
		Prefetch:        cfg.Prefetch,
		ShutdownTimeout: cfg.ShutdownTimeout,
		ConnectTimeout:  cfg.ConnectTimeout,
		ReconnectMax:    cfg.ReconnectMax,
		Probe:           func(ctx context.Context) error { return d.Ping(ctx, cfg.PingPath) },
	}, handle, log)

	m = metrics.New(metrics.Gauges{
		Concurrency: func() float64 { return float64(cfg.Concurrency) },
		Connected:   func() float64 { return bit(c.State() == consume.Consuming || c.State() == consume.Paused) },
		Paused:      func() float64 { return bit(c.State() == consume.Paused) },
		Reconnects:  func() float64 { return float64(c.Reconnects()) },
	})
	m.Registry.MustRegister(metrics.NewPoolCollector(func(ctx context.Context) (metrics.PoolStatus, error) {
		resp, err := d.Get(ctx, "/status", "json")
		if err != nil {
			return metrics.PoolStatus{}, err
		}
		if resp.Status != 200 {
			return metrics.PoolStatus{}, fmt.Errorf("php-fpm status page: status %d", resp.Status)
		}
		return metrics.ParsePoolStatus(resp.Body)
	}, 2*time.Second))
	return d, c, m, lastAnswer
}

// health says the daemon is live while its consumer runs, and ready when it
// is connected and php-fpm answers: a job answered in the last few seconds
// shows that, otherwise a ping does. Under load the pool's children are all
// busy and a ping would wait for one (or never get one, with kept-alive
// connections).
func health(c *consume.Consumer, d *dispatch.Dispatcher, pingPath string, lastAnswer *atomic.Int64) metrics.Health {
	return metrics.Health{
		Live: func() error {
			if s := c.State(); s == consume.Stopped {
				return fmt.Errorf("consumer %s", s)
			}
			return nil
		},
		Ready: func(ctx context.Context) error {
			s := c.State()
			if s != consume.Consuming && s != consume.Paused {
				return fmt.Errorf("broker: %s", s)
			}
			if s == consume.Consuming && time.Since(time.Unix(0, lastAnswer.Load())) < 5*time.Second {
				return nil
			}
			if err := d.Ping(ctx, pingPath); err != nil {
				return fmt.Errorf("php-fpm: %w", err)
			}
			return nil
		},
	}
}

func bit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// healthcheck asks the running daemon's health endpoint.
func healthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	path := "/readyz"
	if len(args) > 0 {
		switch args[0] {
		case "ready":
		case "live":
			path = "/healthz"
		default:
			fmt.Fprintf(stderr, "daemon healthcheck: unknown argument %q (want live or ready)\n", args[0])
			return 2
		}
	}
	var cfg struct {
		MetricsAddr string `envconfig:"METRICS_ADDR" default:":9090"`
	}
	if err := envconfig.Process("", &cfg); err != nil {
		fmt.Fprintf(stderr, "daemon healthcheck: %v\n", err)
		return 2
	}
	host, port, err := net.SplitHostPort(cfg.MetricsAddr)
	if err != nil {
		fmt.Fprintf(stderr, "daemon healthcheck: METRICS_ADDR %q: %v\n", cfg.MetricsAddr, err)
		return 2
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := metrics.Check(ctx, "http://"+net.JoinHostPort(host, port)+path); err != nil {
		fmt.Fprintf(stderr, "daemon healthcheck: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "ok")
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
