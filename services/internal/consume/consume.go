// Package consume keeps a consumer on the job queue: it connects, declares
// the topology, hands deliveries to a bounded set of workers, pauses while
// the php-fpm pool is unavailable or an operator asks it to, reconnects with
// backoff when the broker, a connection or a channel it depends on goes
// away, and drains on shutdown.
//
// The files follow the concerns: this one the Consumer, its configuration
// and the reconnect loop; state.go what the consumer is doing and why
// (its state, the pauses, the probe, the blocked connection); session.go
// one session, opened in one step, closed by one teardown, run by a short
// event loop; pump.go the subscription, the pump that hands deliveries to
// the workers, and the drain.
package consume

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/rs/zerolog"

	"github.com/fpmq/fpmq/services/internal/backoff"
	"github.com/fpmq/fpmq/services/internal/broker"
)

// Handler runs and settles one delivery, publishing through pub whatever it
// must publish before settling (retry and dead-letter copies). ctx is
// cancelled when the shutdown timeout expires; the handler should then give
// up and requeue the delivery.
//
// The consumer acts on the returned error only in two cases. An error
// wrapping outcome.ErrPoolUnavailable, returned after the handler requeued
// the delivery, pauses consumption until Config.Probe succeeds. nil shows
// that the pool runs jobs and resets the probe backoff. Other errors do
// neither: the handler has settled the delivery and reported the failure
// itself.
type Handler func(ctx context.Context, d amqp.Delivery, pub *broker.Publisher) error

// Config describes the consumer. Zero values take the defaults noted.
type Config struct {
	// URL and TLS locate the broker for the default Dial; TLS is for an
	// amqps:// URL, nil meaning the system's roots.
	URL string
	TLS *tls.Config
	// Dial opens one connection to the broker before ctx, which carries
	// ConnectTimeout, is done. Each session opens two: one to consume and
	// settle, one for the Publisher, because a broker under a memory or disk
	// alarm blocks publishing connections and the acks sent on one stall
	// too. nil means broker.Dial(ctx, URL, TLS).
	Dial     func(ctx context.Context) (*amqp.Connection, error)
	Topology broker.Topology
	// Concurrency is how many deliveries are handled at once (at least 1).
	Concurrency int
	// Prefetch is how many unacked deliveries the broker sends ahead; 0
	// means Concurrency.
	Prefetch int
	// ConsumerTimeout, when above 0, asks the broker for this consumer
	// acknowledgement timeout on the subscription (the x-consumer-timeout
	// consumer argument, in milliseconds; RabbitMQ 3.12 and later honour
	// it, older versions ignore it): the broker closes the channel of a
	// consumer that holds a delivery longer. 0 leaves the broker's.
	ConsumerTimeout time.Duration
	// ShutdownTimeout bounds how long in-flight jobs may run after shutdown
	// starts; then their context is cancelled. 0 cancels it at once.
	ShutdownTimeout time.Duration
	// ConnectTimeout bounds one connection attempt (default 10s).
	ConnectTimeout time.Duration
	// Reconnect paces the attempts to connect again once a session ended:
	// Reconnect.Delay(n), jittered, before attempt n+1 of an outage. Zero
	// fields default to Initial 500ms, Max 30s, Factor 2.
	Reconnect backoff.Policy
	// Probe checks whether the pool can take jobs again after a handler
	// reported it unavailable. Each call gets 5s. nil always succeeds.
	Probe func(ctx context.Context) error
	// ProbeBackoff paces Probe: ProbeBackoff.Delay(n), jittered, before
	// call n. The count n carries over from one pause to the next and goes
	// back to 0 only once a handler returns nil, not when a probe succeeds,
	// so that a pool that answers the probe but still cannot run the script
	// (each resume ends in a new pause) slows the cycle down to one resume
	// per ProbeBackoff.Max. Zero fields default to Initial 250ms, Max 5s,
	// Factor 2.
	ProbeBackoff backoff.Policy
}

// probeTimeout bounds one call of Config.Probe.
const probeTimeout = 5 * time.Second

// closeTimeout bounds the closing handshake of a connection at the end of a
// session: a blocked connection never answers it.
const closeTimeout = 5 * time.Second

// Consumer runs a Handler over the deliveries of one queue. Its methods
// other than Run are safe to call from any goroutine, at any time.
type Consumer struct {
	cfg    Config
	handle Handler
	log    zerolog.Logger
	// probeWait waits before a probe, as backoff.Sleep does; tests put a
	// stand-in that records the delays instead of waiting them out.
	probeWait func(ctx context.Context, d time.Duration) bool

	state      atomic.Int32
	reconnects atomic.Int64
	// blocks is the block watch of the current or last session's
	// publishing connection, nil before the first: Blocked reads it.
	blocks atomic.Pointer[broker.BlockWatch]
	// probeStep is n of the next ProbeBackoff.Delay(n): see
	// Config.ProbeBackoff.
	probeStep atomic.Int64
	// held counts the deliveries taken from the broker and not yet
	// settled: handed to a worker, or waiting for one.
	held atomic.Int64
	// operatorChanged wakes the session when an operator paused or
	// resumed; one pending signal is enough, as the session reads the
	// state itself.
	operatorChanged chan struct{}
	// declared is closed once a session has declared the topology.
	declared     chan struct{}
	declaredOnce sync.Once

	mu          sync.Mutex
	pauseReason error
	operator    operatorPause
}

// New returns a Consumer. It does not connect: Run does.
func New(cfg Config, handle Handler, log zerolog.Logger) *Consumer {
	cfg.Concurrency = max(cfg.Concurrency, 1)
	if cfg.Prefetch <= 0 {
		cfg.Prefetch = cfg.Concurrency
	}
	cfg.ConnectTimeout = orDefault(cfg.ConnectTimeout, 10*time.Second)
	cfg.Reconnect = policyOrDefault(cfg.Reconnect, backoff.Policy{Initial: 500 * time.Millisecond, Max: 30 * time.Second, Factor: 2})
	cfg.ProbeBackoff = policyOrDefault(cfg.ProbeBackoff, backoff.Policy{Initial: 250 * time.Millisecond, Max: 5 * time.Second, Factor: 2})
	if cfg.Probe == nil {
		cfg.Probe = func(context.Context) error { return nil }
	}
	if cfg.Dial == nil {
		url, tlsConfig := cfg.URL, cfg.TLS
		cfg.Dial = func(ctx context.Context) (*amqp.Connection, error) { return broker.Dial(ctx, url, tlsConfig) }
	}
	return &Consumer{
		cfg: cfg, handle: handle, log: log, probeWait: backoff.Sleep,
		operatorChanged: make(chan struct{}, 1), declared: make(chan struct{}),
	}
}

// Declared returns a channel that is closed once a session has declared
// the topology (Config.Topology) on the broker: from then on every queue
// of it exists, unless someone deletes one.
func (c *Consumer) Declared() <-chan struct{} { return c.declared }

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func policyOrDefault(p, def backoff.Policy) backoff.Policy {
	p.Initial = orDefault(p.Initial, def.Initial)
	p.Max = max(orDefault(p.Max, def.Max), p.Initial)
	if p.Factor == 0 {
		p.Factor = def.Factor
	}
	return p
}

// Run consumes until ctx is cancelled, starting a new session whenever one
// ends, with backoff. On cancellation it stops taking deliveries, requeues
// those not started, lets in-flight jobs finish within the shutdown
// timeout, closes the connections and returns nil.
func (c *Consumer) Run(ctx context.Context) error {
	defer c.setState(Stopped)
	// Jobs outlive ctx by up to the shutdown timeout, so that a SIGTERM lets
	// them finish instead of cutting them off.
	jobs, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(c.cfg.ShutdownTimeout, cancelJobs)
		context.AfterFunc(jobs, func() { t.Stop() })
	})
	defer stop()

	attempt := 0      // connection attempts in the current outage
	consumed := false // a session got as far as consuming
	reported := false // the current outage was logged
	for {
		err := c.session(ctx, jobs, func() {
			if consumed {
				c.reconnects.Add(1)
			}
			if reported {
				c.log.Info().Msg("broker session restored")
			}
			consumed, reported, attempt = true, false, 0
		})
		c.setState(Connecting)
		if ctx.Err() != nil {
			return nil
		}
		delay := backoff.Jitter(c.cfg.Reconnect.Delay(attempt))
		attempt++
		if !reported {
			// Each outage once, not once per failed attempt.
			c.log.Error().Err(err).Dur("retry_in", delay).Msg("broker session ended; reconnecting with backoff")
			reported = true
		} else {
			c.log.Debug().Err(err).Dur("retry_in", delay).Msg("reconnect failed")
		}
		if !backoff.Sleep(ctx, delay) {
			return nil
		}
	}
}

// dial opens one connection within the connect timeout; role names it in
// errors.
func (c *Consumer) dial(ctx context.Context, role string) (*amqp.Connection, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	defer cancel()
	conn, err := c.cfg.Dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s connection: %w", role, err)
	}
	return conn, nil
}
