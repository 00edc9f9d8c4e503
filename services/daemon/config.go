package main

import (
	"crypto/tls"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/fpmq/fpmq/services/internal/amqpconfig"
	"github.com/fpmq/fpmq/services/internal/backoff"
	"github.com/fpmq/fpmq/services/internal/broker"
	"github.com/fpmq/fpmq/services/internal/fastcgi"
	"github.com/fpmq/fpmq/services/internal/management"
	"github.com/fpmq/fpmq/services/internal/tracing"
)

// topology returns the queues the configuration describes.
func (c config) topology() broker.Topology {
	return broker.Topology{
		Queue:       c.Queue,
		QueueType:   c.QueueType,
		DeadQueue:   c.DeadQueue,
		RetryDelays: broker.RetryDelays(c.MaxAttempts, backoff.Policy{Initial: c.RetryInitial, Factor: c.RetryFactor, Max: c.RetryMax}),
		DelayMax:    c.DelayMax,
		MaxPriority: c.MaxPriority,
	}
}

// minAdminToken is the shortest ADMIN_TOKEN accepted: a token guessable
// from the network would let anyone pause the daemon.
const minAdminToken = 16

// config is the daemon's whole configuration, read from the environment.
type config struct {
	amqpconfig.Settings // AMQP_URL, AMQP_ADDRESSES and the TLS files
	management.Config   // RABBITMQ_MANAGEMENT_URL

	Queue              string        `envconfig:"AMQP_QUEUE" default:"commands" desc:"queue to consume jobs from"`
	QueueType          string        `envconfig:"AMQP_QUEUE_TYPE" default:"classic" desc:"type of the daemon's queues: classic, or quorum for a RabbitMQ cluster"`
	DeadQueue          string        `envconfig:"DEAD_LETTER_QUEUE" desc:"queue of jobs that will never succeed (empty: AMQP_QUEUE + \".dead\")"`
	FastCGIAddr        string        `envconfig:"FASTCGI_ADDR" default:"unix:///run/php-fpm/commands.sock" desc:"php-fpm pool address: unix:///PATH or tcp://HOST:PORT"`
	ScriptFilename     string        `envconfig:"SCRIPT_FILENAME" default:"/app/worker.php" desc:"absolute path of the worker script where php-fpm runs"`
	Concurrency        int           `envconfig:"CONCURRENCY" default:"5" desc:"jobs run at once; at most the pool's pm.max_children"`
	Prefetch           int           `envconfig:"PREFETCH" default:"0" desc:"unacknowledged deliveries held from the broker; 0 means CONCURRENCY"`
	RequestBody        string        `envconfig:"REQUEST_BODY" default:"form" desc:"how a job's body reaches the script: form (a JSON object's fields in $_POST) or raw (the body unchanged on php://input, CONTENT_TYPE from the message)"`
	MaxInputVars       int           `envconfig:"FORM_MAX_INPUT_VARS" default:"1000" desc:"the pool's max_input_vars: a form job with more fields is dead-lettered (form-mismatch), not cut short by PHP"`
	MaxInputNesting    int           `envconfig:"FORM_MAX_INPUT_NESTING_LEVEL" default:"64" desc:"the pool's max_input_nesting_level: a form job nested deeper is dead-lettered (form-mismatch)"`
	RequestTimeout     time.Duration `envconfig:"REQUEST_TIMEOUT" default:"60s" desc:"deadline of one attempt, told to the script (HTTP_X_DEADLINE); php-fpm's request_terminate_timeout should end a run there (compose sets it so): the daemon never cuts a run itself but waits for php-fpm to end it, so that a job's next attempt never starts while an earlier one may run; a run that ends late counts as it ended (a failure is retried later); see \"One run at a time\" in the daemon's README"`
	DelayMax           time.Duration `envconfig:"DELAY_MAX" default:"168h" desc:"longest delay queue: one queue per power of two seconds up to it holds the jobs published with a delay (caller --delay); longer delays pass through it again; see \"Delayed jobs\" in the daemon's README"`
	MaxPriority        int           `envconfig:"AMQP_MAX_PRIORITY" default:"0" desc:"above 0, a classic job queue is declared with x-max-priority (caller --priority); must match the caller's; an existing queue must be re-created for it; see \"Priorities\" in the daemon's README"`
	ConsumerTimeout    time.Duration `envconfig:"AMQP_CONSUMER_TIMEOUT" default:"30m" desc:"the broker's consumer acknowledgement timeout (RabbitMQ's consumer_timeout: 30m unless changed; 0: none); the daemon settles every delivery within it, and asks for a longer one on its subscription (x-consumer-timeout) when REQUEST_TIMEOUT and PREFETCH need it; see \"Reliability\" in the daemon's README"`
	MaxAttempts        int           `envconfig:"MAX_ATTEMPTS" default:"5" desc:"attempts of a job before it is dead-lettered"`
	RetryInitial       time.Duration `envconfig:"RETRY_INITIAL_DELAY" default:"1s" desc:"wait before the 2nd attempt; later waits grow by RETRY_FACTOR (with jitter)"`
	RetryFactor        float64       `envconfig:"RETRY_FACTOR" default:"2" desc:"growth of the wait between attempts"`
	RetryMax           time.Duration `envconfig:"RETRY_MAX_DELAY" default:"60s" desc:"longest wait between attempts"`
	MaxMessageSize     int           `envconfig:"MAX_MESSAGE_SIZE" default:"1048576" desc:"largest job body in bytes; larger ones are dead-lettered"`
	KeepAlive          bool          `envconfig:"FASTCGI_KEEPALIVE" default:"false" desc:"keep one FastCGI connection open per worker instead of one per job (compose: true; see BENCHMARKS.md); each pins a php-fpm child, so give the pool one child more than CONCURRENCY, as compose does: the daemon warns at start when it has none to spare"`
	PingPath           string        `envconfig:"FASTCGI_PING_PATH" default:"/ping" desc:"php-fpm ping.path, requested to see whether the pool is back after an outage"`
	StatusPath         string        `envconfig:"FASTCGI_STATUS_PATH" default:"/status" desc:"php-fpm pm.status_path, read for the pool metrics (fpmq_phpfpm_*)"`
	ShutdownTimeout    time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"30s" desc:"on SIGTERM, how long the daemon waits for jobs that php-fpm is not running (waiting to be due, or for the broker to take their copy) before it requeues them; a job php-fpm runs is waited for until php-fpm ends it"`
	ConnectTimeout     time.Duration `envconfig:"CONNECT_TIMEOUT" default:"10s" desc:"deadline of one broker connection attempt"`
	ReconnectMax       time.Duration `envconfig:"RECONNECT_MAX_DELAY" default:"30s" desc:"longest pause between broker reconnection attempts (backoff with jitter)"`
	MetricsAddr        string        `envconfig:"METRICS_ADDR" default:":9090" desc:"address of /metrics, /healthz, /readyz and the admin endpoints /admin/; empty turns them off"`
	QueueStatsInterval time.Duration `envconfig:"QUEUE_STATS_INTERVAL" default:"15s" desc:"how often the daemon reads its queues' figures from RabbitMQ for fpmq_queue_* metrics; 0 turns it off"`
	AdminToken         string        `envconfig:"ADMIN_TOKEN" desc:"bearer token that lets requests from other addresses use /admin/ (pause, resume, status) on METRICS_ADDR; at least 16 characters (make .env generates one); empty: loopback only; see \"Operating it\" in the daemon's README"`
	JournalFailures    int           `envconfig:"JOURNAL_FAILURES" default:"100" desc:"failed attempts the daemon keeps in memory, each with the start of the script's stderr, for the console's recent failures (GET /admin/jobs); 0 keeps none"`
	JournalNames       int           `envconfig:"JOURNAL_NAMES" default:"200" desc:"job names (the AMQP type property) the daemon counts separately for the console's job names page; jobs of further names are counted together"`
	Pprof              bool          `envconfig:"PPROF" default:"false" desc:"also serve Go profiles under /debug/pprof/ on METRICS_ADDR"`
	LogLevel           string        `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat          string        `envconfig:"LOG_FORMAT" default:"auto" desc:"json, console, or auto (console on a terminal, JSON otherwise)"`
	LogFlushInterval   time.Duration `envconfig:"LOG_FLUSH_INTERVAL" default:"10ms" desc:"log lines are written out together at most this long after they happen (at once for errors, and on a terminal), as each write costs the container engine about 100 µs of CPU whatever its size; longer makes bigger bursts for the engine, which show in job latency (see BENCHMARKS.md); 0 writes each line at once"`

	tracing.Env // OTEL_*: tracing, off by default; see "Tracing" in the README

	tls   *tls.Config // from AMQP_CA_FILE, AMQP_CERT_FILE and AMQP_KEY_FILE, set by loadConfig
	nodes []string    // the broker URLs of AMQP_URL and AMQP_ADDRESSES, set by loadConfig
	// api reads RabbitMQ's management API, set by loadConfig; nil when
	// RABBITMQ_MANAGEMENT_URL is off.
	api *management.Client
}

// loadConfig reads the configuration from the environment and checks it.
// Every error names the variable at fault.
func loadConfig() (config, error) {
	var c config
	if err := envconfig.Process("", &c); err != nil {
		return c, err
	}
	if c.DeadQueue == "" {
		c.DeadQueue = c.Queue + ".dead"
	}
	var err error
	// An empty password is left to RabbitMQ to refuse, as it always was.
	if c.nodes, c.tls, err = c.Settings.Check(""); err != nil {
		return c, err
	}
	if c.api, err = c.Config.Client(c.URL, c.tls); err != nil {
		return c, err
	}
	return c, c.validate()
}

// validate checks the settings other than the connection's, which
// amqpconfig.Settings.Check does. It is a flat list of checks.
func (c config) validate() error {
	if c.Queue == "" {
		return fmt.Errorf("AMQP_QUEUE: must not be empty")
	}
	if err := broker.CheckQueueType(c.QueueType); err != nil {
		return fmt.Errorf("AMQP_QUEUE_TYPE: %w", err)
	}
	if c.DeadQueue == c.Queue {
		return fmt.Errorf("DEAD_LETTER_QUEUE: must differ from AMQP_QUEUE")
	}
	if c.DelayMax < time.Second {
		return fmt.Errorf("DELAY_MAX: at least 1s, got %s", c.DelayMax)
	}
	if c.MaxPriority < 0 || c.MaxPriority > broker.MaxPriority {
		return fmt.Errorf("AMQP_MAX_PRIORITY: 0 to %d, got %d", broker.MaxPriority, c.MaxPriority)
	}
	if c.MaxAttempts < 1 {
		return fmt.Errorf("MAX_ATTEMPTS: must be at least 1, got %d", c.MaxAttempts)
	}
	if c.RetryFactor < 1 {
		return fmt.Errorf("RETRY_FACTOR: must be at least 1, got %g", c.RetryFactor)
	}
	if c.AdminToken != "" && len(c.AdminToken) < minAdminToken {
		return fmt.Errorf("ADMIN_TOKEN: at least %d characters, got %d (make .env generates one)", minAdminToken, len(c.AdminToken))
	}
	if err := c.Env.Check(); err != nil {
		return err
	}
	if c.JournalFailures < 0 || c.JournalFailures > 10000 {
		return fmt.Errorf("JOURNAL_FAILURES: 0 to 10000, got %d", c.JournalFailures)
	}
	if c.JournalNames < 1 || c.JournalNames > 10000 {
		return fmt.Errorf("JOURNAL_NAMES: 1 to 10000, got %d", c.JournalNames)
	}
	if c.LogFlushInterval < 0 {
		return fmt.Errorf("LOG_FLUSH_INTERVAL: must be 0 or more, got %s", c.LogFlushInterval)
	}
	if c.QueueStatsInterval < 0 {
		return fmt.Errorf("QUEUE_STATS_INTERVAL: must be 0 or more, got %s", c.QueueStatsInterval)
	}
	if c.RequestBody != "form" && c.RequestBody != "raw" {
		return fmt.Errorf("REQUEST_BODY: want form or raw, got %q", c.RequestBody)
	}
	if c.MaxInputVars < 1 {
		return fmt.Errorf("FORM_MAX_INPUT_VARS: must be at least 1, got %d", c.MaxInputVars)
	}
	if c.MaxInputNesting < 1 {
		return fmt.Errorf("FORM_MAX_INPUT_NESTING_LEVEL: must be at least 1, got %d", c.MaxInputNesting)
	}
	if c.MaxMessageSize < 1 {
		return fmt.Errorf("MAX_MESSAGE_SIZE: must be positive, got %d", c.MaxMessageSize)
	}
	if !strings.HasPrefix(c.PingPath, "/") {
		return fmt.Errorf("FASTCGI_PING_PATH: must start with /, got %q", c.PingPath)
	}
	if !strings.HasPrefix(c.StatusPath, "/") {
		return fmt.Errorf("FASTCGI_STATUS_PATH: must start with /, got %q", c.StatusPath)
	}
	if _, _, err := fastcgi.ParseAddress(c.FastCGIAddr); err != nil {
		return fmt.Errorf("FASTCGI_ADDR: %w", err)
	}
	if !filepath.IsAbs(c.ScriptFilename) {
		return fmt.Errorf("SCRIPT_FILENAME: must be an absolute path, got %q", c.ScriptFilename)
	}
	if c.Concurrency < 1 {
		return fmt.Errorf("CONCURRENCY: must be at least 1, got %d", c.Concurrency)
	}
	if c.ConsumerTimeout < 0 {
		return fmt.Errorf("AMQP_CONSUMER_TIMEOUT: must be 0 (none) or more, got %s", c.ConsumerTimeout)
	}
	if c.Prefetch < 0 {
		return fmt.Errorf("PREFETCH: must be 0 or more, got %d", c.Prefetch)
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{
		{"REQUEST_TIMEOUT", c.RequestTimeout},
		{"SHUTDOWN_TIMEOUT", c.ShutdownTimeout},
		{"CONNECT_TIMEOUT", c.ConnectTimeout},
		{"RECONNECT_MAX_DELAY", c.ReconnectMax},
		{"RETRY_INITIAL_DELAY", c.RetryInitial},
		{"RETRY_MAX_DELAY", c.RetryMax},
	} {
		if d.value <= 0 {
			return fmt.Errorf("%s: must be positive, got %s", d.name, d.value)
		}
	}
	return nil
}

// Bounds of how long the daemon holds a delivery, see holding.
const (
	// minCopyHold is the least time a job may wait for the broker to take
	// its retry or dead-letter copy.
	minCopyHold = 5 * time.Minute
	// holdMargin keeps the daemon's own bound this far under the broker's
	// consumer timeout, which RabbitMQ checks only now and then.
	holdMargin = time.Minute
)

// holding is how the daemon keeps each delivery within the broker's
// consumer acknowledgement timeout (RabbitMQ's consumers guide, section
// "Delivery Acknowledgement Timeout"): past it the broker closes the
// channel and delivers the job again.
type holding struct {
	// Work is the longest a delivery waits for a worker and its attempt
	// runs: one REQUEST_TIMEOUT for each round of the workers that the
	// deliveries prefetched beyond CONCURRENCY may wait for, plus its own.
	Work time.Duration
	// RunHold bounds how long past REQUEST_TIMEOUT the daemon waits for
	// php-fpm to end a run (dispatch.Config.RunHold); 0: none.
	RunHold time.Duration
	// CopyHold bounds the wait for the broker to take a retry or
	// dead-letter copy afterwards (dispatch.Config.CopyHold); 0: none.
	CopyHold time.Duration
	// Ask is the consumer timeout to request on the subscription, 0 for
	// the broker's own: asked for only when the broker's is too short for
	// Work, minCopyHold and holdMargin.
	Ask time.Duration
}

func (c config) holding() holding {
	prefetch := c.Prefetch
	if prefetch <= 0 {
		prefetch = c.Concurrency
	}
	rounds := (max(prefetch-c.Concurrency, 0) + c.Concurrency - 1) / c.Concurrency
	h := holding{Work: time.Duration(rounds+1) * c.RequestTimeout}
	// What the broker allows beyond Work is shared by a run that php-fpm
	// lets go past its deadline and the copy afterwards.
	switch t := c.ConsumerTimeout; {
	case t == 0:
	case h.Work+2*minCopyHold+holdMargin <= t:
		rest := t - h.Work - holdMargin
		h.RunHold = rest / 2
		h.CopyHold = rest - h.RunHold
	default:
		h.RunHold, h.CopyHold = minCopyHold, minCopyHold
		h.Ask = h.Work + 2*minCopyHold + holdMargin
	}
	return h
}
