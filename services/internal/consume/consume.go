// Package consume keeps a consumer on the job queue: it connects, declares
// the topology, hands deliveries to a bounded set of workers, pauses while
// the php-fpm pool is unavailable or an operator asks it to, reconnects with
// backoff when the broker, a connection or a channel it depends on goes
// away, and drains on shutdown.
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
	"github.com/fpmq/fpmq/services/internal/outcome"
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

// State is what the consumer is doing, for health checks and metrics.
type State int32

// The states of a Consumer.
const (
	Connecting State = iota // no session: connecting, or waiting to reconnect
	Consuming               // taking deliveries
	Paused                  // connected, but the pool is unavailable or an operator paused it
	Stopped                 // Run returned
)

var stateNames = [...]string{"connecting", "consuming", "paused", "stopped"}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", int32(s))
}

// Consumer runs a Handler over the deliveries of one queue. Its methods
// other than Run are safe to call from any goroutine, at any time.
type Consumer struct {
	cfg    Config
	handle Handler
	log    zerolog.Logger

	state      atomic.Int32
	reconnects atomic.Int64
	blocked    atomic.Bool
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

// operatorPause is an operator's pause: whether there is one, why, and
// since when.
type operatorPause struct {
	on     bool
	reason string
	since  time.Time
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
	return &Consumer{cfg: cfg, handle: handle, log: log, operatorChanged: make(chan struct{}, 1), declared: make(chan struct{})}
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

// State returns what the consumer is doing now.
func (c *Consumer) State() State { return State(c.state.Load()) }

// Reconnects returns how many times the consumer connected again after
// losing a session.
func (c *Consumer) Reconnects() int64 { return c.reconnects.Load() }

// Blocked reports whether the broker blocks the publishing connection, as
// it does under a memory or disk alarm: retry and dead-letter copies then
// wait for their confirm, and the jobs that publish them with them.
func (c *Consumer) Blocked() bool { return c.blocked.Load() }

// PauseReason returns the handler's error that caused the current pause,
// or nil when the consumer is not paused.
func (c *Consumer) PauseReason() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pauseReason
}

// Held returns how many deliveries the consumer holds from the broker, not
// yet settled: those being handled and those waiting for a worker.
func (c *Consumer) Held() int64 { return c.held.Load() }

// Pause stops consumption for an operator until Resume, whatever the pool
// does, and reports whether it changed anything: pausing a paused consumer
// keeps the first reason and time. The consumer cancels its subscription,
// requeues the deliveries it holds but has not started, and lets running
// jobs finish; then it holds none. The pause lasts across reconnections,
// not across a restart of the process.
func (c *Consumer) Pause(reason string) bool {
	c.mu.Lock()
	if c.operator.on {
		c.mu.Unlock()
		return false
	}
	c.operator = operatorPause{on: true, reason: reason, since: time.Now()}
	c.mu.Unlock()
	c.log.Warn().Str("reason", reason).Int64("running", c.held.Load()).Msg("consumption paused by operator: no new jobs; running ones finish")
	c.wake()
	return true
}

// Resume ends an operator's pause and reports whether there was one. The
// consumer takes jobs again unless the pool is unavailable: that pause
// goes on until the pool answers.
func (c *Consumer) Resume() bool {
	c.mu.Lock()
	was := c.operator
	c.operator = operatorPause{}
	poolDown := c.pauseReason != nil
	c.mu.Unlock()
	if !was.on {
		return false
	}
	ev := c.log.Info().Str("reason", was.reason).Dur("paused_for", time.Since(was.since))
	if poolDown {
		ev.Msg("consumption resumed by operator; still paused until the php-fpm pool answers")
	} else {
		ev.Msg("consumption resumed by operator")
	}
	c.wake()
	return true
}

// OperatorPaused reports whether an operator paused consumption, with the
// reason given and when.
func (c *Consumer) OperatorPaused() (paused bool, reason string, since time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.operator.on, c.operator.reason, c.operator.since
}

func (c *Consumer) operatorPaused() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.operator.on
}

// wake tells the session that the operator's pause changed.
func (c *Consumer) wake() {
	select {
	case c.operatorChanged <- struct{}{}:
	default: // a signal is pending already
	}
}

func (c *Consumer) setPauseReason(err error) {
	c.mu.Lock()
	c.pauseReason = err
	c.mu.Unlock()
}

func (c *Consumer) setState(s State) { c.state.Store(int32(s)) }

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

// session runs one session: two connections, the topology, a subscription
// and the workers. It returns why the session ended, or nil when ctx was
// cancelled and the workers drained.
func (c *Consumer) session(ctx, jobs context.Context, onConsuming func()) error {
	conn, err := c.dial(ctx, "consuming")
	if err != nil {
		return err
	}
	defer func() { conn.CloseDeadline(time.Now().Add(closeTimeout)) }()
	pubConn, err := c.dial(ctx, "publishing")
	if err != nil {
		return err
	}
	// The library closes the blocked notifications when the connection
	// closes, which ends their watcher.
	var watcher sync.WaitGroup
	blocks := pubConn.NotifyBlocked(make(chan amqp.Blocking, 1))
	watcher.Go(func() { c.watchBlocked(blocks) })
	defer func() {
		// Closing the connection closes the publisher's channel too,
		// within the deadline even if the broker blocks the connection,
		// which Publisher.Close would not be.
		pubConn.CloseDeadline(time.Now().Add(closeTimeout))
		watcher.Wait()
	}()
	connClosed := conn.NotifyClose(make(chan *amqp.Error, 1))
	pubConnClosed := pubConn.NotifyClose(make(chan *amqp.Error, 1))

	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	chClosed := ch.NotifyClose(make(chan *amqp.Error, 1))
	// A server-side basic.cancel (queue deleted, a policy) leaves the
	// channel open and the consumer idle: only this says so.
	cancelled := ch.NotifyCancel(make(chan string, 1))
	if err := ch.Qos(c.cfg.Prefetch, 0, false); err != nil { // false: per consumer
		return fmt.Errorf("set prefetch: %w", err)
	}
	if err := c.cfg.Topology.Declare(conn); err != nil {
		return err
	}
	c.declaredOnce.Do(func() { close(c.declared) })
	pub, err := broker.NewPublisher(pubConn)
	if err != nil {
		return err
	}
	pubClosed := pub.NotifyClose(make(chan *amqp.Error, 1))

	s := &session{
		c: c, ch: ch, pub: pub, jobs: jobs,
		work:   make(chan job),
		down:   make(chan report),
		ending: make(chan struct{}),
	}
	if err := s.reconcile(); err != nil {
		return err
	}
	onConsuming()
	if s.subscribed {
		c.log.Info().Str("queue", c.cfg.Topology.Queue).Int("concurrency", c.cfg.Concurrency).Int("prefetch", c.cfg.Prefetch).Msg("consuming")
	} else {
		c.log.Info().Str("queue", c.cfg.Topology.Queue).Msg("connected; consumption stays paused by operator")
	}

	var workers sync.WaitGroup
	for range c.cfg.Concurrency {
		workers.Go(s.worker)
	}
	probeOK := make(chan struct{})
	probeCtx, stopProbe := context.WithCancel(ctx)
	var probing sync.WaitGroup
	defer func() {
		// In this order: no more probes; no more deliveries, those not
		// handed out requeued (the pump ends once its delivery channel
		// closes, cancelled or gone with the channel); then the jobs in
		// hand finish, publishing through pub, whose connection closes
		// only after them.
		stopProbe()
		probing.Wait()
		if err := s.unsubscribe(); err != nil {
			c.log.Debug().Err(err).Msg("cancel consumer at the end of the session")
		}
		s.pumped.Wait()
		close(s.ending)
		close(s.work)
		workers.Wait()
		c.setPauseReason(nil)
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
		case e := <-connClosed:
			return c.lost("consuming connection closed", e)
		case e := <-pubConnClosed:
			return c.lost("publishing connection closed", e)
		case e := <-chClosed:
			return c.lost("consuming channel closed", e)
		case e := <-pubClosed:
			return c.lost("publishing channel closed", e)
		case tag, ok := <-cancelled:
			if !ok {
				cancelled = nil // closed with the channel, which chClosed reports
				continue
			}
			if !s.subscribed || tag != s.tag {
				continue
			}
			s.cancelledByBroker()
			c.setState(Connecting)
			return fmt.Errorf("the broker cancelled the consumer of %q (queue deleted, or a policy changed)", c.cfg.Topology.Queue)
		case r := <-s.down:
			if s.poolDown || r.gen != s.gen {
				continue // reported by a job of an earlier subscription
			}
			// Also during an operator's pause, which a job that was
			// running when it began may find the pool gone in: the probe
			// then runs, so that resuming finds the pool's state known.
			s.poolDown = true
			c.setPauseReason(r.err)
			c.log.Warn().Err(r.err).Int64("probe_step", c.probeStep.Load()).Msg("php-fpm pool unavailable: pausing consumption, requeueing held jobs, probing the pool")
			if err := s.reconcile(); err != nil {
				c.setState(Connecting)
				return err
			}
			probing.Go(func() { c.probe(probeCtx, probeOK) })
		case <-probeOK:
			s.poolDown = false
			c.setPauseReason(nil)
			if err := s.reconcile(); err != nil {
				c.setState(Connecting)
				return err
			}
			if s.subscribed {
				c.log.Info().Msg("php-fpm pool answers again: resuming consumption")
			} else {
				c.log.Info().Msg("php-fpm pool answers again; consumption stays paused by operator")
			}
		case <-c.operatorChanged:
			if err := s.reconcile(); err != nil {
				c.setState(Connecting)
				return err
			}
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

// lost marks the session as gone at once, so that readiness fails while the
// session drains its workers, and returns what ended it.
func (c *Consumer) lost(what string, e *amqp.Error) error {
	c.setState(Connecting)
	if e == nil {
		return errors.New(what)
	}
	return fmt.Errorf("%s: %w", what, e)
}

// watchBlocked follows the blocked notifications of the publishing
// connection until it closes, logging each change once.
func (c *Consumer) watchBlocked(blocks <-chan amqp.Blocking) {
	for b := range blocks {
		if c.blocked.Swap(b.Active) == b.Active {
			continue
		}
		if b.Active {
			c.log.Warn().Str("reason", b.Reason).Msg("broker blocked the publishing connection (resource alarm): jobs wait to publish their retry and dead-letter copies")
		} else {
			c.log.Info().Msg("broker unblocked the publishing connection")
		}
	}
	// The next session's connection starts unblocked.
	c.blocked.Store(false)
}

// probe calls the Probe with backoff until it succeeds, then signals ok.
func (c *Consumer) probe(ctx context.Context, ok chan<- struct{}) {
	for {
		step := c.probeStep.Add(1) - 1
		delay := backoff.Jitter(c.cfg.ProbeBackoff.Delay(int(step)))
		if !backoff.Sleep(ctx, delay) {
			return
		}
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err := c.cfg.Probe(pctx)
		cancel()
		if err == nil {
			select {
			case ok <- struct{}{}:
			case <-ctx.Done():
			}
			return
		}
		c.log.Debug().Err(err).Msg("php-fpm pool still unavailable")
	}
}

// session is one session's subscription and workers. Its fields belong to
// the goroutine that runs Consumer.session; the workers use only c, pub,
// jobs and the channels.
type session struct {
	c    *Consumer
	ch   *amqp.Channel
	pub  *broker.Publisher
	jobs context.Context

	work     chan job      // to the workers
	down     chan report   // a worker found the pool unavailable
	ending   chan struct{} // closed when the session stops reading down
	poolDown bool          // paused until a probe finds the pool again
	// gen numbers the subscriptions. A job carries the gen of its
	// subscription, so that a failure of a job handed out before a pause
	// does not pause the next subscription.
	gen int64

	// The current subscription: whether there is one, its consumer tag, a
	// channel closed to stop its pump from handing out more deliveries, and
	// the pump itself.
	subscribed bool
	tag        string
	halt       chan struct{}
	pumped     sync.WaitGroup
}

// job is a delivery handed to a worker.
type job struct {
	d   amqp.Delivery
	gen int64
}

// report is a handler's ErrPoolUnavailable, with the gen of its job.
type report struct {
	err error
	gen int64
}

// reconcile subscribes or unsubscribes so that the session consumes exactly
// when neither the pool nor an operator pauses it, and sets the state to
// match.
func (s *session) reconcile() error {
	want := !s.poolDown && !s.c.operatorPaused()
	switch {
	case want && !s.subscribed:
		if err := s.subscribe(); err != nil {
			return err
		}
	case !want && s.subscribed:
		if err := s.unsubscribe(); err != nil {
			return err
		}
	}
	if s.subscribed {
		s.c.setState(Consuming)
	} else {
		s.c.setState(Paused)
	}
	return nil
}

// subscribe subscribes to the job queue and starts a pump that feeds the
// workers until the subscription ends.
func (s *session) subscribe() error {
	tag := fmt.Sprintf("fpmq-daemon-%x", rand.Uint64())
	var args amqp.Table
	if t := s.c.cfg.ConsumerTimeout; t > 0 {
		args = amqp.Table{"x-consumer-timeout": t.Milliseconds()}
	}
	deliveries, err := s.ch.Consume(
		s.c.cfg.Topology.Queue,
		tag,
		false, // auto-ack: no, a job is acked only once it is settled
		false, // exclusive
		false, // no-local
		false, // no-wait
		args,
	)
	if err != nil {
		return fmt.Errorf("consume %q: %w", s.c.cfg.Topology.Queue, err)
	}
	s.gen++
	gen := s.gen
	halt := make(chan struct{})
	s.subscribed, s.tag, s.halt = true, tag, halt
	s.pumped.Go(func() {
		for d := range deliveries {
			s.c.held.Add(1)
			// Checked first, so that a free worker does not win the race
			// against a halt that came before the delivery.
			select {
			case <-halt:
				s.requeue(d)
				continue
			default:
			}
			select {
			case s.work <- job{d, gen}:
			case <-halt:
				s.requeue(d)
			}
		}
	})
	return nil
}

// requeue returns a delivery that was never handed out to the queue, with
// no attempt counted, and no delivery counted either where the queue would
// count one (broker.Requeue).
func (s *session) requeue(d amqp.Delivery) {
	t := s.c.cfg.Topology
	_ = broker.Requeue(s.jobs, s.pub, d, t.Queue, broker.CountsReturns(t.QueueType))
	s.c.held.Add(-1)
}

// unsubscribe ends the current subscription, if any, and waits until the
// deliveries it had received and not handed out are requeued; those handed
// out still run.
func (s *session) unsubscribe() error {
	if !s.subscribed {
		return nil
	}
	s.subscribed = false
	close(s.halt)
	err := s.ch.Cancel(s.tag, false) // false: wait for cancel-ok
	if err != nil {
		// Closing the channel ends the pump's deliveries, and the broker
		// requeues all that the channel held.
		_ = s.ch.Close()
	}
	s.pumped.Wait()
	if err != nil {
		return fmt.Errorf("cancel consumer: %w", err)
	}
	return nil
}

// cancelledByBroker forgets a subscription that the broker cancelled: the
// library has closed its deliveries already.
func (s *session) cancelledByBroker() {
	s.subscribed = false
	close(s.halt)
}

func (s *session) worker() {
	for j := range s.work {
		err := s.c.handle(s.jobs, j.d, s.pub)
		s.c.held.Add(-1)
		switch {
		case errors.Is(err, outcome.ErrPoolUnavailable):
			select {
			case s.down <- report{err, j.gen}:
			case <-s.ending:
			}
		case err == nil:
			s.c.probeStep.Store(0)
		}
	}
}

// shutdown stops taking deliveries. The broker stops sending; deliveries
// already handed out still run.
func (s *session) shutdown() {
	s.c.log.Info().Dur("timeout", s.c.cfg.ShutdownTimeout).Msg("shutting down: no new jobs, waiting for in-flight ones")
	if err := s.unsubscribe(); err != nil {
		s.c.log.Warn().Err(err).Msg("cancel consumer; closed the channel instead, which requeues its jobs")
	}
}
