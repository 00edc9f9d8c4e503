// Package consume keeps a consumer on the job queue: it connects, declares
// the queue, hands deliveries to a bounded set of workers, reconnects with
// backoff when the broker goes away, and drains on shutdown.
package consume

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/rs/zerolog"

	"github.com/fpmq/fpmq/services/internal/broker"
)

// Handler runs and settles one delivery. ctx is cancelled when the shutdown
// timeout expires; the handler should then give up and let the broker
// requeue the delivery.
type Handler func(ctx context.Context, d amqp.Delivery)

// Config describes the consumer. Zero durations take the defaults noted.
type Config struct {
	URL         string
	Queue       string
	Concurrency int // workers running deliveries at once; at least 1
	Prefetch    int // unacked deliveries the broker sends ahead; 0 means Concurrency
	// ShutdownTimeout bounds how long in-flight jobs may run after shutdown
	// starts; what is left is requeued by the broker.
	ShutdownTimeout time.Duration
	// ConnectTimeout bounds one connection attempt (default 10s).
	ConnectTimeout time.Duration
	// ReconnectMin and ReconnectMax bound the backoff between connection
	// attempts (defaults 500ms and 30s).
	ReconnectMin, ReconnectMax time.Duration
}

// Consumer runs a Handler over the deliveries of one queue.
type Consumer struct {
	cfg    Config
	handle Handler
	log    zerolog.Logger
}

// New returns a Consumer. It does not connect: Run does.
func New(cfg Config, handle Handler, log zerolog.Logger) *Consumer {
	if cfg.Prefetch <= 0 {
		cfg.Prefetch = cfg.Concurrency
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.ReconnectMin <= 0 {
		cfg.ReconnectMin = 500 * time.Millisecond
	}
	if cfg.ReconnectMax < cfg.ReconnectMin {
		cfg.ReconnectMax = max(30*time.Second, cfg.ReconnectMin)
	}
	return &Consumer{cfg: cfg, handle: handle, log: log}
}

// Run consumes until ctx is cancelled, reconnecting whenever the connection
// is lost. On cancellation it stops taking deliveries, lets in-flight jobs
// finish within the shutdown timeout, closes the connection and returns nil.
func (c *Consumer) Run(ctx context.Context) error {
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
	connected := true // so that the first failure is logged
	for {
		err := c.session(ctx, jobs, func() {
			if !connected {
				c.log.Info().Msg("broker connection restored")
			}
			connected = true
			delay = c.cfg.ReconnectMin
		})
		if ctx.Err() != nil {
			return nil
		}
		if connected {
			// Log the loss once, not once per failed attempt.
			c.log.Error().Err(err).Msg("broker connection lost; reconnecting")
			connected = false
		} else {
			c.log.Debug().Err(err).Dur("retry_in", delay).Msg("reconnect failed")
		}
		if !sleep(ctx, jitter(delay)) {
			return nil
		}
		delay = min(delay*2, c.cfg.ReconnectMax)
	}
}

// session runs one connection's life. It returns when the connection fails
// (with the reason) or when ctx is cancelled and the workers have drained.
func (c *Consumer) session(ctx, jobs context.Context, onConsuming func()) error {
	dialCtx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	conn, err := broker.Dial(dialCtx, c.cfg.URL)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close()
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))

	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	chClosed := ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := ch.Qos(c.cfg.Prefetch, 0, false); err != nil { // false: per consumer
		return fmt.Errorf("set prefetch: %w", err)
	}
	if _, err := broker.DeclareQueue(ch, c.cfg.Queue); err != nil {
		return err
	}
	const tag = "fpmq-daemon"
	deliveries, err := ch.Consume(
		c.cfg.Queue,
		tag,
		false, // auto-ack: no, a job is acked only once it succeeded
		false, // exclusive
		false, // no-local
		false, // no-wait
		nil,
	)
	if err != nil {
		return fmt.Errorf("consume %q: %w", c.cfg.Queue, err)
	}
	onConsuming()
	c.log.Info().Str("queue", c.cfg.Queue).Int("concurrency", c.cfg.Concurrency).Int("prefetch", c.cfg.Prefetch).Msg("consuming")

	var workers sync.WaitGroup
	for range c.cfg.Concurrency {
		workers.Go(func() {
			for d := range deliveries {
				c.handle(jobs, d)
			}
		})
	}
	drained := make(chan struct{})
	go func() { workers.Wait(); close(drained) }()

	select {
	case <-ctx.Done():
		c.log.Info().Dur("timeout", c.cfg.ShutdownTimeout).Msg("shutting down: no new jobs, waiting for in-flight ones")
		// The broker stops sending; deliveries already here still run, and
		// the delivery channel closes once they are handed out.
		if err := ch.Cancel(tag, false); err != nil { // false: wait for cancel-ok
			c.log.Warn().Err(err).Msg("cancel consumer")
		}
		select {
		case <-drained:
			c.log.Info().Msg("in-flight jobs done")
		case <-jobs.Done():
			<-drained
			c.log.Warn().Msg("shutdown timeout: unfinished jobs are requeued by the broker")
		}
		return nil
	case <-drained:
		// The delivery channel closed without a shutdown: the channel or the
		// connection died. Report why.
		select {
		case e := <-chClosed:
			return channelError(e)
		case e := <-closed:
			return channelError(e)
		default:
			return errors.New("delivery channel closed")
		}
	}
}

func channelError(e *amqp.Error) error {
	if e == nil {
		return errors.New("connection closed")
	}
	return e
}

// jitter spreads d over [d/2, d) so that many daemons do not reconnect in step.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// sleep waits for d; it returns false if ctx was cancelled first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
