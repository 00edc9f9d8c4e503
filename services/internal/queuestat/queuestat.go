// Package queuestat reads from RabbitMQ how many messages wait in each of
// the daemon's queues and how many consumers each has, for the metrics,
// the alerts built on them and the status command.
package queuestat

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/rs/zerolog"

	"github.com/fpmq/fpmq/services/internal/backoff"
	"github.com/fpmq/fpmq/services/internal/broker"
)

// Roles of the queues of a topology.
const (
	RoleJob   = "job"   // the queue jobs are published to
	RoleRetry = "retry" // a queue where failed jobs wait for their next attempt
	RoleDelay = "delay" // a queue where jobs published with a delay wait until due
	RoleDead  = "dead"  // the dead-letter queue
)

// Queue is one queue and its role.
type Queue struct{ Name, Role string }

// Queues lists the queues of t: the job queue, its retry queues in order
// of delay (each once, though attempts may share one), its delay queues
// likewise, and the dead-letter queue.
func Queues(t broker.Topology) []Queue {
	qs := []Queue{{t.Queue, RoleJob}}
	for _, level := range t.RetryLevels() {
		qs = append(qs, Queue{t.RetryQueue(level), RoleRetry})
	}
	for _, d := range broker.DelayBuckets(t.DelayMax) {
		qs = append(qs, Queue{t.DelayQueue(d), RoleDelay})
	}
	return append(qs, Queue{t.DeadQueue, RoleDead})
}

// Stat is what RabbitMQ says of one queue: its messages ready for delivery
// (not those delivered and not yet acknowledged) and its consumers.
type Stat struct {
	Queue
	Ready     int
	Consumers int
	Missing   bool // the queue does not exist
}

// Inspect asks RabbitMQ about each queue with a passive queue.declare,
// which changes nothing. A queue that does not exist is reported Missing
// (RabbitMQ closes the channel for it: another is opened for the rest).
func Inspect(conn *amqp.Connection, queues []Queue) ([]Stat, error) {
	var ch *amqp.Channel
	defer func() {
		if ch != nil {
			ch.Close()
		}
	}()
	stats := make([]Stat, 0, len(queues))
	for _, q := range queues {
		if ch == nil {
			var err error
			if ch, err = conn.Channel(); err != nil {
				return stats, fmt.Errorf("open channel: %w", err)
			}
		}
		info, err := ch.QueueDeclarePassive(q.Name,
			true,  // durable
			false, // auto-delete
			false, // exclusive
			false, // no-wait
			nil)
		var amqpErr *amqp.Error
		switch {
		case err == nil:
			stats = append(stats, Stat{Queue: q, Ready: info.Messages, Consumers: info.Consumers})
		case errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound:
			stats = append(stats, Stat{Queue: q, Missing: true})
			ch = nil // closed by the broker
		default:
			return stats, fmt.Errorf("inspect queue %q: %w", q.Name, err)
		}
	}
	return stats, nil
}

// Poller keeps a connection of its own and inspects its queues every
// Every, so that reading the figures never waits for the broker.
type Poller struct {
	Dial   func(ctx context.Context) (*amqp.Connection, error)
	Queues []Queue
	Every  time.Duration
	Log    zerolog.Logger

	mu   sync.Mutex
	last []Stat
	at   time.Time
}

// Last returns the latest figures and when they were read; nil and the
// zero time before the first reading or after a failed one.
func (p *Poller) Last() ([]Stat, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last, p.at
}

func (p *Poller) set(stats []Stat, at time.Time) {
	p.mu.Lock()
	p.last, p.at = stats, at
	p.mu.Unlock()
}

// Read asks RabbitMQ now, on a connection of its own closed at the end or
// when ctx is done, rather than returning the last poll's figures.
func (p *Poller) Read(ctx context.Context) ([]Stat, time.Time, error) {
	conn, err := p.Dial(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer conn.Close()
	// A passive declare cannot be cancelled; closing the connection ends it.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	stats, err := Inspect(conn, p.Queues)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
		return nil, time.Time{}, err
	}
	return stats, time.Now(), nil
}

// reconnect bounds the pauses between connection attempts.
var reconnect = backoff.Policy{Initial: time.Second, Max: 30 * time.Second, Factor: 2}

// Run polls until ctx is done, reconnecting after a failure.
func (p *Poller) Run(ctx context.Context) {
	for failures := 0; ; failures++ {
		err := p.session(ctx)
		p.set(nil, time.Time{})
		if ctx.Err() != nil {
			return
		}
		p.Log.Debug().Err(err).Msg("queue figures unavailable; reconnecting")
		if !backoff.Sleep(ctx, backoff.Jitter(reconnect.Delay(failures))) {
			return
		}
	}
}

func (p *Poller) session(ctx context.Context) error {
	conn, err := p.Dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	t := time.NewTicker(p.Every)
	defer t.Stop()
	for {
		stats, err := Inspect(conn, p.Queues)
		if err != nil {
			return err
		}
		p.set(stats, time.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
