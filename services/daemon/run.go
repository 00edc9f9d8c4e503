package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/kelseyhightower/envconfig"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/fpmq/fpmq/services/internal/admin"
	"github.com/fpmq/fpmq/services/internal/backoff"
	"github.com/fpmq/fpmq/services/internal/broker"
	"github.com/fpmq/fpmq/services/internal/consume"
	"github.com/fpmq/fpmq/services/internal/dispatch"
	"github.com/fpmq/fpmq/services/internal/fastcgi"
	"github.com/fpmq/fpmq/services/internal/jobrate"
	"github.com/fpmq/fpmq/services/internal/journal"
	"github.com/fpmq/fpmq/services/internal/logging"
	"github.com/fpmq/fpmq/services/internal/metrics"
	"github.com/fpmq/fpmq/services/internal/outcome"
	"github.com/fpmq/fpmq/services/internal/phpform"
	"github.com/fpmq/fpmq/services/internal/phpfpm"
	"github.com/fpmq/fpmq/services/internal/queuepolicy"
	"github.com/fpmq/fpmq/services/internal/queuestat"
	"github.com/fpmq/fpmq/services/internal/tracing"
)

// serve is the daemon's life: it consumes jobs until ctx ends, then
// drains, and returns the exit status: 0 once stopped, 2 for a mistake in
// the configuration, 1 if it cannot listen on METRICS_ADDR.
func serve(ctx context.Context, stderr io.Writer) int {
	cfg, err := loadConfig()
	if err != nil {
		fmt.Fprintf(stderr, "daemon: configuration: %v\n(see daemon -h)\n", err)
		return 2
	}
	logOut := stderr
	// On a terminal, people read the lines as they come.
	if cfg.LogFlushInterval > 0 && !logging.IsTerminal(stderr) {
		batch := logging.NewBatch(stderr, cfg.LogFlushInterval)
		defer batch.Close()
		logOut = batch
	}
	log, err := logging.New(logOut, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		fmt.Fprintf(stderr, "daemon: configuration: LOG_LEVEL/LOG_FORMAT: %v\n", err)
		return 2
	}
	client, pageClient, err := fastcgiClients(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "daemon: configuration: FASTCGI_ADDR: %v\n", err)
		return 2
	}
	defer client.CloseIdleConnections()
	var ln net.Listener
	if cfg.MetricsAddr != "" {
		if ln, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			fmt.Fprintf(stderr, "daemon: METRICS_ADDR: %v\n", err)
			return 1
		}
	}

	spans, err := tracing.New(cfg.Env, "fpmq-daemon", log)
	if err != nil {
		fmt.Fprintf(stderr, "daemon: configuration: %v\n", err)
		return 2
	}
	defer shutdownTracing(spans, log)

	logStart(cfg, log)
	d := assemble(cfg, client, pageClient, spans, log)
	checkPool(ctx, d.pool, cfg, log)
	d.runParts(ctx, ln, cfg, log)
	return 0
}

// tracingFlushTimeout bounds how long a stopping daemon tries to export
// the spans still queued: an unreachable receiver must not hold it up.
const tracingFlushTimeout = 5 * time.Second

// shutdownTracing exports the spans still queued, within
// tracingFlushTimeout, and says so if some were lost.
func shutdownTracing(spans *tracing.Provider, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), tracingFlushTimeout)
	defer cancel()
	if err := spans.Shutdown(ctx); err != nil {
		log.Warn().Err(err).Msg("tracing: spans still queued at shutdown were not all exported")
	}
}

// fastcgiClients returns the FastCGI clients of FASTCGI_ADDR: jobs for the
// jobs, pages for the pool's ping and status pages.
func fastcgiClients(cfg config) (jobs, pages *fastcgi.Client, err error) {
	opts := fastcgi.Options{}
	if cfg.KeepAlive {
		// An idle kept connection still pins a php-fpm child; let it go
		// soon when jobs stop.
		opts.MaxIdleConns, opts.IdleConnTimeout = cfg.Concurrency, keptConnIdle
	}
	if jobs, err = fastcgi.NewClient(cfg.FastCGIAddr, opts); err != nil {
		return nil, nil, err
	}
	// The pool's ping and status pages go through a client of their own: a
	// connection each, so that they never pin a child, and room for the
	// full status page of a big pool.
	if pages, err = fastcgi.NewClient(cfg.FastCGIAddr, fastcgi.Options{MaxBodyKept: statusPageMax}); err != nil {
		return nil, nil, err
	}
	return jobs, pages, nil
}

// logStart logs the configuration the daemon starts with, and how it keeps
// each delivery within the broker's consumer timeout.
func logStart(cfg config, log zerolog.Logger) {
	log.Info().
		Str("amqp_url", broker.Redact(cfg.URL)).
		Strs("amqp_nodes", broker.NewCluster(cfg.nodes, nil).Nodes()).
		Str("queue", cfg.Queue).
		Str("fastcgi_addr", cfg.FastCGIAddr).
		Str("script", cfg.ScriptFilename).
		Str("request_body", cfg.RequestBody).
		Int("concurrency", cfg.Concurrency).
		Int("max_attempts", cfg.MaxAttempts).
		Str("dead_letter_queue", cfg.DeadQueue).
		Str("management_url", managementURL(cfg)).
		Bool("tracing", cfg.Env.Enabled()).
		Msg("daemon starting")

	hold := cfg.holding()
	switch {
	case cfg.ConsumerTimeout == 0:
		log.Info().Dur("work", hold.Work).Msg("the broker has no consumer timeout (AMQP_CONSUMER_TIMEOUT=0): jobs wait for php-fpm to end their runs, and for their retry and dead-letter copies, without a bound")
	case hold.Ask == 0:
		log.Info().Dur("consumer_timeout", cfg.ConsumerTimeout).Dur("work", hold.Work).Dur("run_hold", hold.RunHold).Dur("copy_hold", hold.CopyHold).
			Msg("every delivery is settled within the broker's consumer timeout: waiting for a worker and running take at most work, a run php-fpm lets go past REQUEST_TIMEOUT is waited for at most run_hold more, publishing its copy at most copy_hold")
	default:
		log.Warn().Dur("consumer_timeout", cfg.ConsumerTimeout).Dur("work", hold.Work).Dur("asked", hold.Ask).
			Msg("REQUEST_TIMEOUT and PREFETCH let a delivery wait longer than the broker's consumer timeout: asking for a longer one on the subscription (x-consumer-timeout, honoured by RabbitMQ 3.12 and later; on older brokers raise consumer_timeout, or the broker closes the channel and delivers the job again)")
	}
}

// managementURL returns where the daemon reads RabbitMQ's management API,
// for the log: "off" when it does not.
func managementURL(cfg config) string {
	if cfg.api == nil {
		return "off"
	}
	return cfg.api.URL()
}

// runParts runs the daemon's parts under one errgroup: the consumer, the
// admin server on ln (none if ln is nil), the queue figures' poller
// (none if QUEUE_STATS_INTERVAL is 0) and the policies' watcher. A part
// that fails stops no other. It returns once all have stopped, in this
// order:
//
//  1. When ctx ends, the consumer stops taking jobs and drains: running
//     jobs finish within SHUTDOWN_TIMEOUT, the others go back to the
//     queue. The poller and the watcher, whose context ends with ctx,
//     stop at once.
//  2. Once the consumer has returned, "daemon stopped" is logged and the
//     poller and the watcher are stopped (if they still run) and waited
//     for.
//  3. Then the admin server stops: /healthz, /readyz and /metrics answer
//     while the consumer drains. Its error, if any, is logged last.
func (d *daemon) runParts(ctx context.Context, ln net.Listener, cfg config, log zerolog.Logger) {
	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	pollCtx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	polled := make(chan struct{}) // closed once the poller stopped

	var parts errgroup.Group
	if ln != nil {
		handler := d.adminHandler(cfg, log)
		parts.Go(func() error { return admin.Serve(serveCtx, ln, handler, log) })
	}
	if cfg.QueueStatsInterval > 0 {
		parts.Go(func() error {
			defer close(polled)
			d.pollQueues(pollCtx)
			return nil
		})
	} else {
		close(polled)
	}
	watched := make(chan struct{}) // closed once the watcher stopped
	parts.Go(func() error {
		defer close(watched)
		d.watchPolicies(pollCtx)
		return nil
	})
	parts.Go(func() error {
		d.consumer.Run(ctx)
		log.Info().Msg("daemon stopped")
		stopPolling()
		<-polled
		<-watched
		stopServing()
		return nil
	})
	// Only the admin server returns errors.
	if err := parts.Wait(); err != nil {
		log.Warn().Err(err).Msg("metrics server")
	}
}

// adminHandler returns the handler of the admin server: metrics, health,
// the operators' endpoints and, with PPROF, Go's profiles.
func (d *daemon) adminHandler(cfg config, log zerolog.Logger) http.Handler {
	ops := d.operations()
	return admin.Handler(admin.Endpoints{
		Metrics:    d.metrics.Handler(),
		Health:     d.health(),
		Operations: &ops,
		Token:      cfg.AdminToken,
		Pprof:      cfg.Pprof,
		Log:        log,
	})
}

// pollQueues runs the queue figures' poller until ctx ends, once the
// consumer declared the queues: a passive declare of one that does not
// exist yet is an error in RabbitMQ's log.
func (d *daemon) pollQueues(ctx context.Context) {
	select {
	case <-d.consumer.Declared():
		d.queues.Run(ctx)
	case <-ctx.Done():
	}
}

// watchPolicies runs the policies' watcher until ctx ends, once the
// consumer declared the queues, which it checks.
func (d *daemon) watchPolicies(ctx context.Context) {
	select {
	case <-d.consumer.Declared():
		d.policies.Run(ctx)
	case <-ctx.Done():
	}
}

// statusPageMax bounds the full status page the daemon reads, in bytes:
// about 400 per child, so room for some 2,500 children.
const statusPageMax = 1 << 20

// Timings of the daemon's own requests to php-fpm.
const (
	keptConnIdle     = 2 * time.Second // an idle kept connection is closed after this
	statusTimeout    = 2 * time.Second // one read of the pool's status page
	readyPingTimeout = 2 * time.Second // the ping of a readiness check
	startPingTimeout = 5 * time.Second // the ping at start-up
	// answeredRecently is how long a job's answer shows php-fpm is there,
	// so that readiness needs no ping.
	answeredRecently = 5 * time.Second
)

// daemon is the assembled daemon: the dispatcher, the consumer that feeds
// it, the pool it asks about php-fpm, and the metrics that watch them.
type daemon struct {
	jobs       *fastcgi.Client // the jobs' FastCGI client
	dispatcher *dispatch.Dispatcher
	consumer   *consume.Consumer
	pool       *phpfpm.Pool
	queues     *queuestat.Poller
	policies   *queuepolicy.Watcher
	metrics    *metrics.Metrics
	rates      *jobrate.Counter // recent succeeded and failed jobs, for the status
	journal    *journal.Journal // recent failures and job names, for the console
	topology   broker.Topology
	// inFlight counts jobs being handled; lastAnswer is when php-fpm last
	// answered one (Unix nanoseconds).
	inFlight, lastAnswer atomic.Int64
}

// assemble builds the daemon's parts from its configuration: jobs go
// through client, the pool's ping and status pages through pages, spans
// to spans.
func assemble(cfg config, client, pages *fastcgi.Client, spans *tracing.Provider, log zerolog.Logger) *daemon {
	topology := cfg.topology()
	hold := cfg.holding()
	d := &daemon{
		jobs:     client,
		pool:     &phpfpm.Pool{Client: pages, PingPath: cfg.PingPath, StatusPath: cfg.StatusPath},
		rates:    jobrate.New(nil),
		journal:  journal.New(cfg.JournalFailures, cfg.JournalNames),
		topology: topology,
	}
	d.dispatcher = dispatch.New(client, d.pool, dispatch.Config{
		Script:         cfg.ScriptFilename,
		Body:           dispatch.BodyMode(cfg.RequestBody),
		FormLimits:     phpform.Limits{MaxInputVars: cfg.MaxInputVars, MaxNestingLevel: cfg.MaxInputNesting},
		Timeout:        cfg.RequestTimeout,
		MaxAttempts:    cfg.MaxAttempts,
		MaxMessageSize: cfg.MaxMessageSize,
		Topology:       topology,
		CopyRetryMin:   cfg.RetryInitial,
		CopyRetryMax:   cfg.RetryMax,
		RunHold:        hold.RunHold,
		CopyHold:       hold.CopyHold,
		Tracer:         tracerOf(spans),
	}, log)

	d.consumer = consume.New(consume.Config{
		Dial:            clusterDial(cfg, log),
		Topology:        topology,
		Concurrency:     cfg.Concurrency,
		Prefetch:        cfg.Prefetch,
		ConsumerTimeout: hold.Ask,
		ShutdownTimeout: cfg.ShutdownTimeout,
		ConnectTimeout:  cfg.ConnectTimeout,
		Reconnect:       backoff.Policy{Max: cfg.ReconnectMax},
		Probe:           d.pool.Ping,
	}, d.handle, log)

	d.queues = &queuestat.Poller{
		Dial:   broker.NewCluster(cfg.nodes, cfg.tls).Dial,
		Queues: queuestat.Queues(topology),
		Every:  cfg.QueueStatsInterval,
		Log:    log,
	}

	// It checks as often as the figures are read; once if they are not.
	d.policies = &queuepolicy.Watcher{
		Client:   cfg.api,
		Topology: topology,
		Every:    cfg.QueueStatsInterval,
		Log:      log,
	}

	d.metrics = d.newMetrics(cfg)
	d.metrics.MustRegister(metrics.NewSpanCollector(func() metrics.SpanCounts {
		c := spans.Counts()
		return metrics.SpanCounts{Exported: c.Exported, QueueFull: c.QueueFull, ExportFailed: c.ExportFailed}
	}))
	return d
}

// tracerOf returns the dispatcher's tracer: nil, for none, when tracing
// is off.
func tracerOf(spans *tracing.Provider) trace.Tracer {
	if !spans.Enabled() {
		return nil
	}
	return spans.Tracer()
}

// handle is the consumer's handler: it runs a job through the dispatcher
// and keeps the figures of the metrics, the status and readiness. Only a
// pool that is unavailable is an error, which pauses the consumer.
func (d *daemon) handle(ctx context.Context, msg amqp.Delivery, pub *broker.Publisher) error {
	d.inFlight.Add(1)
	defer d.inFlight.Add(-1)
	// A delayed job's wait in the queue starts when it is due.
	done := d.metrics.Started(outcome.WaitStart(msg.Timestamp, msg.Headers))
	res := d.dispatcher.Handle(ctx, msg, pub)
	done(res)
	d.rates.Observe(res.Outcome)
	d.journal.Observe(msg.MessageId, msg.Type, res, time.Now())
	if res.Status != 0 {
		d.lastAnswer.Store(time.Now().UnixNano())
	}
	if errors.Is(res.Err, outcome.ErrPoolUnavailable) {
		return res.Err
	}
	return nil
}

// newMetrics returns the daemon's metrics, registered: its gauges read the
// consumer, the dispatcher and the pool; the pool's and the queues'
// collectors read php-fpm's status page and the poller's last figures.
func (d *daemon) newMetrics(cfg config) *metrics.Metrics {
	c := d.consumer
	ready := d.health().Ready
	m := metrics.New(cfg.Queue, metrics.Gauges{
		Concurrency: func() float64 { return float64(cfg.Concurrency) },
		Connected:   func() float64 { return bit(c.State() == consume.Consuming || c.State() == consume.Paused) },
		Paused:      func() float64 { return bit(c.State() == consume.Paused) },
		PausedByOperator: func() float64 {
			paused, _, _ := c.OperatorPaused()
			return bit(paused)
		},
		Blocked: func() float64 { return bit(c.Blocked()) },
		Ready: func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), readyPingTimeout)
			defer cancel()
			return bit(ready(ctx) == nil)
		},
		Reconnects:   func() float64 { return float64(c.Reconnects()) },
		CopyFailures: func() float64 { return float64(d.dispatcher.CopyFailures()) },
		Resent:       func() float64 { return float64(d.jobs.Resent()) },
	})
	m.MustRegister(metrics.NewPoolCollector(d.pool.Status, statusTimeout))
	// Its series name each of the route's queues in their own queue label.
	m.Registry.MustRegister(metrics.NewQueueCollector(d.queues.Last))
	m.Registry.MustRegister(metrics.NewPolicyCollector(d.policies.Last))
	m.MustRegister(metrics.NewPolicyCheckedGauge(d.policies.Last))
	return m
}

// clusterDial returns the consumer's Dial: each session's two connections
// go to one node of AMQP_ADDRESSES, the next session's to another if that
// one went away. With several nodes it logs which one it connected to.
func clusterDial(cfg config, log zerolog.Logger) func(context.Context) (*amqp.Connection, error) {
	cluster := broker.NewCluster(cfg.nodes, cfg.tls)
	if len(cfg.nodes) < 2 {
		return cluster.Dial
	}
	return func(ctx context.Context) (*amqp.Connection, error) {
		conn, err := cluster.Dial(ctx)
		if err == nil {
			log.Info().Str("node", cluster.Node()).Msg("connected to RabbitMQ node")
		}
		return conn, err
	}
}

// checkPool pings the pool once at start-up and says what it found. php-fpm
// offers no way to check a script without running it, so the script itself
// is checked by the first job: if php-fpm cannot run it, that job goes back
// to the queue untouched, the daemon pauses and says so. With kept-alive
// connections it also warns when the pool has no child to spare beyond
// CONCURRENCY, from the status page's process count before any job.
func checkPool(ctx context.Context, pool *phpfpm.Pool, cfg config, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, startPingTimeout)
	defer cancel()
	if err := pool.Ping(ctx); err != nil {
		log.Warn().Err(err).Msg("php-fpm pool does not answer yet; jobs wait in the queue until it does")
		return
	}
	log.Info().Str("script", cfg.ScriptFilename).Msg("php-fpm pool answers")
	if !cfg.KeepAlive {
		return
	}
	// Before any job, php-fpm's count of processes is the pool's size.
	st, err := pool.Status(ctx)
	if err == nil && st.TotalProcesses <= float64(cfg.Concurrency) {
		log.Warn().Int("concurrency", cfg.Concurrency).Float64("pool_children", st.TotalProcesses).
			Msg("FASTCGI_KEEPALIVE: each worker's kept connection pins a php-fpm child, and this pool has none to spare: under full load its ping and status (the pool metrics, php-fpm's healthcheck) wait for a child; give it CONCURRENCY + 1 children (FPM_MAX_CHILDREN)")
	}
}

// health says the daemon is live while its consumer runs, and ready when it
// can run jobs: not paused by an operator, connected, not paused for
// php-fpm, its copies taken by the broker, and php-fpm there. A job answered in the last few seconds shows php-fpm is
// there; otherwise a ping does. A ping that times out while the daemon's
// own jobs run means every child is busy, which is not a fault: only a
// pool that refuses connections is.
func (d *daemon) health() admin.Health {
	c := d.consumer
	return admin.Health{
		Live: func() error {
			if s := c.State(); s == consume.Stopped {
				return fmt.Errorf("consumer %s", s)
			}
			return nil
		},
		Ready: func(ctx context.Context) error {
			if err := operatorPause(c); err != nil {
				return err
			}
			switch s := c.State(); s {
			case consume.Consuming:
			case consume.Paused:
				return fmt.Errorf("paused: %w", c.PauseReason())
			default:
				return fmt.Errorf("broker: %s", s)
			}
			if c.Blocked() {
				return errors.New("broker: the publishing connection is blocked by a resource alarm; retries and dead letters wait")
			}
			if err := d.dispatcher.CopyTrouble(); err != nil {
				return fmt.Errorf("broker does not take retry or dead-letter copies: %w", err)
			}
			if time.Since(time.Unix(0, d.lastAnswer.Load())) < answeredRecently {
				return nil
			}
			ctx, cancel := context.WithTimeout(ctx, readyPingTimeout)
			defer cancel()
			err := d.pool.Ping(ctx)
			if err == nil || (!errors.Is(err, fastcgi.ErrUnavailable) && d.inFlight.Load() > 0) {
				return nil
			}
			return fmt.Errorf("php-fpm: %w", err)
		},
	}
}

// operatorPause returns the readiness error of an operator's pause, which
// names the reason given, and what else keeps the daemon from consuming:
// resuming does not end those.
func operatorPause(c *consume.Consumer) error {
	paused, reason, _ := c.OperatorPaused()
	if !paused {
		return nil
	}
	msg := "paused by operator"
	if reason != "" {
		msg += ": " + reason
	}
	if err := c.PauseReason(); err != nil {
		msg += fmt.Sprintf("; also paused: %v", err)
	} else if s := c.State(); s != consume.Paused {
		msg += fmt.Sprintf("; broker: %s", s)
	}
	return errors.New(msg)
}

func bit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// healthcheck runs "daemon healthcheck": it asks the running daemon's
// health endpoint. It is a command.
func healthcheck(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
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
	url, err := loopbackURL(cfg.MetricsAddr)
	if err != nil {
		fmt.Fprintf(stderr, "daemon healthcheck: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := admin.Check(ctx, url+path); err != nil {
		fmt.Fprintf(stderr, "daemon healthcheck: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "ok")
	return 0
}
