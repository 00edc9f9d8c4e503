package consume

import (
	"context"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/backoff"
)

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

// operatorPause is an operator's pause: whether there is one, why, and
// since when.
type operatorPause struct {
	on     bool
	reason string
	since  time.Time
}

// State returns what the consumer is doing now.
func (c *Consumer) State() State { return State(c.state.Load()) }

func (c *Consumer) setState(s State) { c.state.Store(int32(s)) }

// Reconnects returns how many times the consumer connected again after
// losing a session.
func (c *Consumer) Reconnects() int64 { return c.reconnects.Load() }

// Blocked reports whether the broker blocks the publishing connection, as
// it does under a memory or disk alarm: retry and dead-letter copies then
// wait for their confirm, and the jobs that publish them with them. It is
// the state of the connection's one broker.BlockWatch, which gates the
// Publisher too; a closed connection counts as not blocked.
func (c *Consumer) Blocked() bool {
	w := c.blocks.Load()
	return w != nil && w.Blocked()
}

// logBlock is the onChange of the publishing connection's block watch: it
// logs each change once.
func (c *Consumer) logBlock(b amqp.Blocking) {
	if b.Active {
		c.log.Warn().Str("reason", b.Reason).Msg("broker blocked the publishing connection (resource alarm): jobs wait to publish their retry and dead-letter copies")
	} else {
		c.log.Info().Msg("broker unblocked the publishing connection")
	}
}

// Held returns how many deliveries the consumer holds from the broker, not
// yet settled: those being handled and those waiting for a worker.
func (c *Consumer) Held() int64 { return c.held.Load() }

// PauseReason returns the handler's error that caused the current pause,
// or nil when the consumer is not paused.
func (c *Consumer) PauseReason() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pauseReason
}

func (c *Consumer) setPauseReason(err error) {
	c.mu.Lock()
	c.pauseReason = err
	c.mu.Unlock()
}

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

// probe calls the Probe with backoff until it succeeds, then signals ok.
func (c *Consumer) probe(ctx context.Context, ok chan<- struct{}) {
	for {
		step := c.probeStep.Add(1) - 1
		delay := backoff.Jitter(c.cfg.ProbeBackoff.Delay(int(step)))
		if !c.probeWait(ctx, delay) {
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
