package consume

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/broker"
)

// session is one broker session: two connections, a channel that consumes
// and settles, a Publisher on the other connection, the notifications of
// each, and the subscription and workers that run on them. openSession
// opens it in one step, loop handles its events, and close is its one
// teardown. Its fields belong to the goroutine that runs Consumer.session;
// the workers and the pumps use only c, pub, jobs and the channels work,
// down and ending.
type session struct {
	c *Consumer
	// ctx is Run's: its end shuts the session down. jobs is the jobs'
	// context, which outlives ctx by up to the shutdown timeout.
	ctx, jobs context.Context

	// What open opened; each stays nil until then.
	conn, pubConn *amqp.Connection
	blocks        *broker.BlockWatch // the publishing connection's one block watch
	ch            *amqp.Channel      // consumes and settles
	pub           *broker.Publisher  // on pubConn, gated by blocks

	// The events loop watches besides ctx and the operator's wake-up.
	connClosed, pubConnClosed chan *amqp.Error
	chClosed, pubClosed       chan *amqp.Error
	// cancelled receives the consumer tag of a server-side basic.cancel
	// (queue deleted, a policy), which leaves the channel open and the
	// consumer idle: only this says so.
	cancelled chan string
	down      chan report   // a worker found the pool unavailable
	probeOK   chan struct{} // a probe found the pool again

	// The pool's pause and its probes.
	poolDown  bool // paused until a probe finds the pool again
	probeCtx  context.Context
	stopProbe context.CancelFunc
	probing   sync.WaitGroup

	// The workers, started by start; close drains them if running.
	running bool
	work    chan job      // to the workers
	ending  chan struct{} // closed when the session stops reading down
	workers sync.WaitGroup

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

// session runs one session: it opens it, subscribes unless a pause holds,
// starts the workers and handles the session's events until one ends it.
// It returns why the session ended, or nil when ctx was cancelled and the
// workers drained. onConsuming is called once the session got that far.
func (c *Consumer) session(ctx, jobs context.Context, onConsuming func()) error {
	s, err := c.openSession(ctx, jobs)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.start(onConsuming); err != nil {
		return err
	}
	return s.loop()
}

// openSession dials the two connections, watches them, opens the consuming
// channel with its prefetch, declares the topology and opens the
// Publisher. If a step fails it closes what the steps before opened and
// returns the error; else the caller must close the session.
func (c *Consumer) openSession(ctx, jobs context.Context) (*session, error) {
	s := &session{
		c: c, ctx: ctx, jobs: jobs,
		down:    make(chan report),
		probeOK: make(chan struct{}),
		work:    make(chan job),
		ending:  make(chan struct{}),
	}
	if err := s.open(); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// open is openSession's steps, in order.
func (s *session) open() (err error) {
	c := s.c
	if s.conn, err = c.dial(s.ctx, "consuming"); err != nil {
		return err
	}
	if s.pubConn, err = c.dial(s.ctx, "publishing"); err != nil {
		return err
	}
	// The one watcher of the publishing connection's blocks: it gates the
	// Publisher, and Blocked and the logs follow it.
	s.blocks = broker.WatchBlocked(s.pubConn, c.logBlock)
	c.blocks.Store(s.blocks)
	s.connClosed = s.conn.NotifyClose(make(chan *amqp.Error, 1))
	s.pubConnClosed = s.pubConn.NotifyClose(make(chan *amqp.Error, 1))

	if s.ch, err = s.conn.Channel(); err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	s.chClosed = s.ch.NotifyClose(make(chan *amqp.Error, 1))
	s.cancelled = s.ch.NotifyCancel(make(chan string, 1))
	if err := s.ch.Qos(c.cfg.Prefetch, 0, false); err != nil { // false: per consumer
		return fmt.Errorf("set prefetch: %w", err)
	}
	if err := c.cfg.Topology.Declare(s.conn); err != nil {
		return err
	}
	c.declaredOnce.Do(func() { close(c.declared) })
	if s.pub, err = broker.NewPublisher(s.pubConn, broker.WithBlockWatch(s.blocks)); err != nil {
		return err
	}
	s.pubClosed = s.pub.NotifyClose(make(chan *amqp.Error, 1))
	return nil
}

// close is the session's one teardown. It drains the workers if they
// started (drain); then it closes the publishing connection, which closes
// the Publisher's channel too, within closeTimeout even if the broker
// blocks the connection (Publisher.Close would wait for a blocked broker),
// and waits for its block watch to end; then the consuming connection.
// What open did not get to open is nil and skipped.
func (s *session) close() {
	if s.running {
		s.drain()
	}
	if s.pubConn != nil {
		s.pubConn.CloseDeadline(time.Now().Add(closeTimeout))
		<-s.blocks.Done()
	}
	if s.conn != nil {
		s.conn.CloseDeadline(time.Now().Add(closeTimeout))
	}
}

// start subscribes unless a pause holds, tells Run through onConsuming
// that the session got going, logs it and starts the workers.
func (s *session) start(onConsuming func()) error {
	if err := s.reconcile(); err != nil {
		return err
	}
	onConsuming()
	q := s.c.cfg.Topology.Queue
	if s.subscribed {
		s.c.log.Info().Str("queue", q).Int("concurrency", s.c.cfg.Concurrency).Int("prefetch", s.c.cfg.Prefetch).Msg("consuming")
	} else {
		s.c.log.Info().Str("queue", q).Msg("connected; consumption stays paused by operator")
	}
	s.probeCtx, s.stopProbe = context.WithCancel(s.ctx)
	s.startWorkers()
	return nil
}

// loop handles the session's events until one ends it. It returns nil once
// ctx is done and the subscription is cancelled; otherwise the error that
// ended the session, with the state set to Connecting at once, so that
// readiness fails while the session drains its workers.
func (s *session) loop() error {
	for {
		var err error
		select {
		case <-s.ctx.Done():
			s.shutdown()
			return nil
		case e := <-s.connClosed:
			err = lost("consuming connection closed", e)
		case e := <-s.pubConnClosed:
			err = lost("publishing connection closed", e)
		case e := <-s.chClosed:
			err = lost("consuming channel closed", e)
		case e := <-s.pubClosed:
			err = lost("publishing channel closed", e)
		case tag, ok := <-s.cancelled:
			err = s.onCancel(tag, ok)
		case r := <-s.down:
			err = s.onPoolDown(r)
		case <-s.probeOK:
			err = s.onPoolBack()
		case <-s.c.operatorChanged:
			err = s.reconcile()
		}
		if err != nil {
			s.c.setState(Connecting)
			return err
		}
	}
}

// lost returns the error of a session that lost what, which the library
// closed with e (nil when closed without an error).
func lost(what string, e *amqp.Error) error {
	if e == nil {
		return errors.New(what)
	}
	return fmt.Errorf("%s: %w", what, e)
}

// onCancel handles the broker's basic.cancel of the consumer tag (ok false:
// the notifications closed with the channel, which chClosed reports). A
// cancel of the current subscription ends the session.
func (s *session) onCancel(tag string, ok bool) error {
	if !ok {
		s.cancelled = nil
		return nil
	}
	if !s.subscribed || tag != s.tag {
		return nil
	}
	s.cancelledByBroker()
	return fmt.Errorf("the broker cancelled the consumer of %q (queue deleted, or a policy changed)", s.c.cfg.Topology.Queue)
}

// onPoolDown handles a worker's report that the pool is unavailable: it
// pauses consumption and starts probing the pool. It does so during an
// operator's pause too, which a job that was running when it began may
// find the pool gone in, so that resuming finds the pool's state known.
func (s *session) onPoolDown(r report) error {
	if s.poolDown || r.gen != s.gen {
		return nil // reported by a job of an earlier subscription
	}
	s.poolDown = true
	s.c.setPauseReason(r.err)
	s.c.log.Warn().Err(r.err).Int64("probe_step", s.c.probeStep.Load()).Msg("php-fpm pool unavailable: pausing consumption, requeueing held jobs, probing the pool")
	if err := s.reconcile(); err != nil {
		return err
	}
	s.probing.Go(func() { s.c.probe(s.probeCtx, s.probeOK) })
	return nil
}

// onPoolBack handles a probe that found the pool again: consumption
// resumes unless an operator paused it.
func (s *session) onPoolBack() error {
	s.poolDown = false
	s.c.setPauseReason(nil)
	if err := s.reconcile(); err != nil {
		return err
	}
	if s.subscribed {
		s.c.log.Info().Msg("php-fpm pool answers again: resuming consumption")
	} else {
		s.c.log.Info().Msg("php-fpm pool answers again; consumption stays paused by operator")
	}
	return nil
}
