package consume

import (
	"errors"
	"fmt"
	"math/rand/v2"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/broker"
	"github.com/fpmq/fpmq/services/internal/outcome"
)

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
	s.pumped.Go(func() { s.pump(deliveries, gen, halt) })
	return nil
}

// pump hands the deliveries of subscription gen to the workers, one at a
// time as a worker is free, until the library closes deliveries; once halt
// is closed it requeues them instead.
func (s *session) pump(deliveries <-chan amqp.Delivery, gen int64, halt <-chan struct{}) {
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

// startWorkers starts Config.Concurrency workers; from then on close
// drains them.
func (s *session) startWorkers() {
	for range s.c.cfg.Concurrency {
		s.workers.Go(s.worker)
	}
	s.running = true
}

// worker handles the jobs the pump hands out until work is closed, and
// reports a pool found unavailable to the session.
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

// drain ends the session's work, in this order: no more probes; no more
// deliveries, those not handed out requeued (the pump ends once its
// delivery channel closes, cancelled or gone with the channel); then the
// jobs in hand finish, publishing through pub, whose connection close
// closes after drain.
func (s *session) drain() {
	s.stopProbe()
	s.probing.Wait()
	if err := s.unsubscribe(); err != nil {
		s.c.log.Debug().Err(err).Msg("cancel consumer at the end of the session")
	}
	s.pumped.Wait()
	close(s.ending)
	close(s.work)
	s.workers.Wait()
	s.c.setPauseReason(nil)
	if s.ctx.Err() != nil {
		if s.jobs.Err() != nil {
			s.c.log.Warn().Msg("shutdown timeout: jobs waiting to be due or for the broker to take their copy were requeued; jobs php-fpm ran were waited for")
		} else {
			s.c.log.Info().Msg("in-flight jobs done")
		}
	}
}
