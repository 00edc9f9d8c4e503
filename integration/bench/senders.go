package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
)

// directSender sends each job's form straight to the pool through CONCURRENCY
// workers, as the daemon would without the broker: jobs that find every
// worker busy wait in the bench, their send time already taken, as they
// would wait in the queue. Unbounded concurrency would instead overflow
// php-fpm's listen backlog whenever the machine stalls.
func (b *bench) directSender(ctx context.Context) (func(int) error, func() error, error) {
	socket := b.sys.socketPath()
	type request struct {
		form []byte
		id   int64
	}
	queue := make(chan request, b.opts.latencyJobs)
	var wg sync.WaitGroup
	errs := make([]error, b.sys.concurrency)
	for w := range b.sys.concurrency {
		wg.Go(func() {
			for r := range queue {
				if errs[w] == nil {
					errs[w] = do(ctx, socket, r.form, r.id)
				}
			}
		})
	}
	send := func(i int) error {
		queue <- request{sampleForm(i, "direct"), int64(i)}
		return nil
	}
	finish := func() error {
		close(queue)
		wg.Wait()
		return errors.Join(errs...)
	}
	return send, finish, nil
}

// pipelineSender publishes each job to the queue, as the caller would but
// without waiting for confirms, which would pace the sender by the broker.
func (b *bench) pipelineSender(ctx context.Context) (func(int) error, func() error, error) {
	return b.brokerSender(ctx, "pipeline", amqp.Persistent)
}

// transientSender is pipelineSender with transient messages, which the
// broker does not write to disk.
func (b *bench) transientSender(ctx context.Context) (func(int) error, func() error, error) {
	return b.brokerSender(ctx, "transient", amqp.Transient)
}

// brokerSender publishes each job to the queue tagged tag, with the
// delivery mode mode, without waiting for confirms.
func (b *bench) brokerSender(ctx context.Context, tag string, mode uint8) (func(int) error, func() error, error) {
	conn, err := b.sys.dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("open channel: %w", err)
	}
	send := func(i int) error {
		m := message(sampleJob(i, tag, 0))
		m.DeliveryMode = mode
		return publishMessage(ctx, ch, m)
	}
	return send, conn.Close, nil
}
