// Package consume keeps a consumer on the job queue: it connects, declares
// the topology, hands deliveries to a bounded set of workers, pauses while
// the backend is down, reconnects with backoff when the broker goes away,
// and drains on shutdown.
package consume

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/rs/zerolog"

	"github.com/fpmq/fpmq/services/internal/backoff"
	"github.com/fpmq/fpmq/services/internal/broker"
)

// ErrBackendDown is what a Handler returns (wrapped or not) when a delivery
// could not run because the backend is down. The handler must have requeued
// the delivery. The consumer then pauses: it stops taking deliveries,
// requeues those it holds, and resumes once Config.Probe succeeds.
var ErrBackendDown = errors.New("backend down")

// Handler runs and settles one delivery, publishing through pub whatever it
// must publish before settling. ctx is cancelled when the shutdown timeout
// expires; the handler should then give up and requeue the delivery.
type Handler func(ctx context.Context, d amqp.Delivery, pub *broker.Publisher) error

// Config describes the consumer. Zero durations take the defaults noted.
type Config struct {
	URL         string
	TLS         *tls.Config // for an amqps:// URL; nil means the system's roots
	Topology    broker.Topology
	Concurrency int // deliveries handled at once; at least 1
	Prefetch    int // unacked deliveries the broker sends ahead; 0 means Concurrency
	// ShutdownTimeout bounds how long in-flight jobs may run after shutdown
	// starts; what is left is requeued.
	ShutdownTimeout time.Duration
	// ConnectTimeout bounds one connection attempt (default 10s).
	ConnectTimeout time.Duration
	// ReconnectMin and ReconnectMax bound the backoff between connection
	// attempts (defaults 500ms and 30s).
	ReconnectMin, ReconnectMax time.Duration
	// Probe checks whether the backend is back after a handler reported it
	// down. It is called with backoff between ProbeMin and ProbeMax
	// (defaults 250ms and 5s).
	Probe              func(ctx context.Context) error
	ProbeMin, ProbeMax time.Duration
}

// State is what the consumer is doing, for health checks and metrics.
type State int32

// The states of a Consumer.
const (
	Connecting State = iota // no connection to the broker
	Consuming               // taking deliveries
	Paused                  // connected, but the backend is down
	Stopped                 // Run returned
)

var stateNames = [...]string{"connecting", "consuming", "paused", "stopped"}

func (s State) String() string { return stateNames[s] }

// Consumer runs a Handler over the deliveries of one queue.
type Consumer struct {
	cfg    Config
	handle Handler
	log    zerolog.Logger
	state  atomic.Int32
	// Reconnects counts connections established after a lost one.
	reconnects atomic.Int64
}

// New returns a Consumer. It does not connect: Run does.
func New(cfg Config, handle Handler, log zerolog.Logger) *Consumer {
	if cfg.Prefetch <= 0 {
		cfg.Prefetch = cfg.Concurrency
	}
	cfg.ConnectTimeout = orDefault(cfg.ConnectTimeout, 10*time.Second)
	cfg.ReconnectMin = orDefault(cfg.ReconnectMin, 500*time.Millisecond)
	cfg.ReconnectMax = max(orDefault(cfg.ReconnectMax, 30*time.Second), cfg.ReconnectMin)
	cfg.ProbeMin = orDefault(cfg.ProbeMin, 250*time.Millisecond)
	cfg.ProbeMax = max(orDefault(cfg.ProbeMax, 5*time.Second), cfg.ProbeMin)
	if cfg.Probe == nil {
		cfg.Probe = func(context.Context) error { return nil }
	}
	return &Consumer{cfg: cfg, handle: handle, log: log}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// State returns what the consumer is doing now.
func (c *Consumer) State() State { return State(c.state.Load()) }

// Reconnects returns how many times the consumer connected again after
// losing its connection.
func (c *Consumer) Reconnects() int64 { return c.reconnects.Load() }

func (c *Consumer) setState(s State) { c.state.Store(int32(s)) }

// Run consumes until ctx is cancelled, reconnecting whenever the connection
// is lost. On cancellation it stops taking deliveries, lets in-flight jobs
// finish within the shutdown timeout, closes the connection and returns nil.
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

	delay := c.cfg.ReconnectMin
	lost := false     // a connection was up and went away
	reported := false // the current outage was logged
	for {
		err := c.session(ctx, jobs, func() {
			if lost {
				c.reconnects.Add(1)
			}
			if reported {
				c.log.Info().Msg("broker connection restored")
			}
			lost, reported = true, false
			delay = c.cfg.ReconnectMin
		})
		c.setState(Connecting)
		if ctx.Err() != nil {
			return nil
		}
		if !reported {
			// Log each outage once, not once per failed attempt.
			c.log.Error().Err(err).Msg("broker unavailable; reconnecting with backoff")
			reported = true
		} else {
			c.log.Debug().Err(err).Dur("retry_in", delay).Msg("reconnect failed")
		}
		if !backoff.Sleep(ctx, backoff.Jitter(delay)) {
			return nil
		}
		delay = min(delay*2, c.cfg.ReconnectMax)
	}
}

// session runs one connection's life. It returns when the connection fails
// (with the reason), or nil when ctx is cancelled and the workers drained.
func (c *Consumer) session(ctx, jobs context.Context, onConsuming func()) error {
	dialCtx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	conn, err := broker.Dial(dialCtx, c.cfg.URL, c.cfg.TLS)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close()
	connClosed := conn.NotifyClose(make(chan *amqp.Error, 1))

	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	chClosed := ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := ch.Qos(c.cfg.Prefetch, 0, false); err != nil { // false: per consumer
		return fmt.Errorf("set prefetch: %w", err)
	}
	if err := c.cfg.Topology.Declare(ch); err != nil {
		return err
	}
	pub, err := broker.NewPublisher(conn)
	if err != nil {
		return err
	}
	defer pub.Close()

	s := &session{c: c, ch: ch, pub: pub, jobs: jobs, work: make(chan amqp.Delivery), down: make(chan struct{}, 1)}
	if err := s.consume(); err != nil {
		return err
	}
	onConsuming()
	c.setState(Consuming)
	c.log.Info().Str("queue", c.cfg.Topology.Queue).Int("concurrency", c.cfg.Concurrency).Int("prefetch", c.cfg.Prefetch).Msg("consuming")

	var workers sync.WaitGroup
	for range c.cfg.Concurrency {
		workers.Go(s.worker)
	}
	probeOK := make(chan struct{}, 1)
	probeCtx, stopProbe := context.WithCancel(ctx)
	var probing sync.WaitGroup
	defer func() {
		stopProbe()
		probing.Wait()
		// Whatever ended the session, the pump stops once its delivery
		// channel closes (cancelled, or gone with the channel); then the
		// workers finish the jobs in hand, publishing through pub, which
		// closes only after them.
		s.pumped.Wait()
		close(s.work)
		workers.Wait()
		if ctx.Err() != nil {
			if jobs.Err() != nil {
				c.log.Warn().Msg("shutdown timeout: unfinished jobs were requeued")
			} else {
				c.log.Info().Msg("in-flight jobs done")
			}
		}
	}()

	for {
		select {
		case <-ctx.Done():
			s.shutdown()
			return nil
		case e := <-chClosed:
			return closeError(e)
		case e := <-connClosed:
			return closeError(e)
		case <-s.down:
			if s.paused {
				continue
			}
			c.log.Warn().Msg("php-fpm pool unavailable: pausing consumption, requeueing held jobs, probing the pool")
			s.paused = true
			c.setState(Paused)
			if err := s.cancel(); err != nil {
				return err
			}
			probing.Go(func() { c.probe(probeCtx, probeOK) })
		case <-probeOK:
			c.log.Info().Msg("php-fpm pool answers again: resuming consumption")
			s.paused = false
			if err := s.consume(); err != nil {
				return err
			}
			c.setState(Consuming)
		}
	}
}

// session is one connection's consumer and workers.
type session struct {
	c    *Consumer
	ch   *amqp.Channel
	pub  *broker.Publisher
	jobs context.Context

	work   chan amqp.Delivery // to the workers
	down   chan struct{}      // a worker found the backend down
	paused bool               // unsubscribed because the backend is down

	// The current subscription: its consumer tag, a channel closed to stop
	// its pump from handing out more deliveries, and the pump itself.
	tag    string
	halt   chan struct{}
	pumped sync.WaitGroup
}

// consume subscribes to the job queue and starts a pump that feeds the
// workers until the subscription ends.
func (s *session) consume() error {
	s.tag = fmt.Sprintf("fpmq-daemon-%x", rand.Uint64())
	deliveries, err := s.ch.Consume(
		s.c.cfg.Topology.Queue,
		s.tag,
		false, // auto-ack: no, a job is acked only once it is settled
		false, // exclusive
		false, // no-local
		false, // no-wait
		nil,
	)
	if err != nil {
		return fmt.Errorf("consume %q: %w", s.c.cfg.Topology.Queue, err)
	}
	halt := make(chan struct{})
	s.halt = halt
	s.pumped.Go(func() {
		for d := range deliveries {
			select {
			case s.work <- d:
			case <-halt:
				// Received after the subscription was cancelled: back to
				// the queue, no attempt counted.
				_ = d.Nack(false, true) // false: this delivery only; true: requeue
			}
		}
	})
	return nil
}

// cancel ends the current subscription and waits until the deliveries it
// had already received are requeued; those already handed out still run.
func (s *session) cancel() error {
	close(s.halt)
	if err := s.ch.Cancel(s.tag, false); err != nil { // false: wait for cancel-ok
		return fmt.Errorf("cancel consumer: %w", err)
	}
	s.pumped.Wait()
	return nil
}

func (s *session) worker() {
	for d := range s.work {
		if err := s.c.handle(s.jobs, d, s.pub); errors.Is(err, ErrBackendDown) {
			select {
			case s.down <- struct{}{}:
			default: // already reported
			}
		}
	}
}

// shutdown stops taking deliveries. The broker stops sending; deliveries
// already received still run.
func (s *session) shutdown() {
	s.c.log.Info().Dur("timeout", s.c.cfg.ShutdownTimeout).Msg("shutting down: no new jobs, waiting for in-flight ones")
	if s.paused {
		return // not subscribed
	}
	if err := s.cancel(); err != nil {
		// Without the channel the broker requeues all it had sent.
		s.c.log.Warn().Err(err).Msg("cancel consumer; closing the channel instead")
		_ = s.ch.Close()
	}
}

// probe calls the Probe with backoff until it succeeds, then signals ok.
func (c *Consumer) probe(ctx context.Context, ok chan<- struct{}) {
	delay := c.cfg.ProbeMin
	for {
		if !backoff.Sleep(ctx, backoff.Jitter(delay)) {
			return
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := c.cfg.Probe(pctx)
		cancel()
		if err == nil {
			select {
			case ok <- struct{}{}:
			case <-ctx.Done():
			}
			return
		}
		c.log.Debug().Err(err).Dur("retry_in", delay).Msg("php-fpm pool still unavailable")
		delay = min(delay*2, c.cfg.ProbeMax)
	}
}

func closeError(e *amqp.Error) error {
	if e == nil {
		return errors.New("connection closed")
	}
	return e
}
