package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// brokerOnlyName names the broker's own p99 in the latency section.
const brokerOnlyName = "diagnostic: RabbitMQ alone, p99 send -> delivery to a bare consumer"

// latencyQueue is the queue of brokerPass, which no daemon consumes.
const latencyQueue = "bench.latency"

// brokerPass offers the latency jobs at rate, persistent as the caller
// sends them, to a durable queue of their own, which a bare amqp091-go
// consumer in the bench takes as the daemon takes jobs (prefetch
// CONCURRENCY, one ack per message). It records the time from send to
// delivery, RabbitMQ's share of the pipeline's latency, and returns its
// p99 in ms.
func (b *bench) brokerPass(ctx context.Context, rate float64, rabbit string) (float64, error) {
	n := b.opts.latencyJobs
	conn, err := b.sys.dial(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, fmt.Errorf("open channel: %w", err)
	}
	if _, err := ch.QueueDeclare(latencyQueue, true, false, false, false, nil); err != nil { // durable, not auto-delete, not exclusive, wait
		return 0, fmt.Errorf("declare %s: %w", latencyQueue, err)
	}
	defer func() {
		if c, err := conn.Channel(); err == nil {
			c.QueueDelete(latencyQueue, false, false, false) // even if used or not empty; wait
		}
	}()
	deliveries, err := consumeLatencyQueue(ch, b.sys.concurrency)
	if err != nil {
		return 0, err
	}
	var lat []float64
	consumed := make(chan error, 1)
	go func() {
		var err error
		lat, err = receiveLatencies(deliveries, n)
		consumed <- err
	}()

	pub, err := conn.Channel()
	if err != nil {
		return 0, fmt.Errorf("open channel: %w", err)
	}
	before, err := b.snapshot(ctx, rabbit)
	if err != nil {
		return 0, err
	}
	send := func(int) error {
		m := message(strconv.AppendInt(nil, time.Now().UnixMicro(), 10))
		return pub.PublishWithContext(ctx, "", latencyQueue, true, false, m) // mandatory, not immediate
	}
	if err := pace(ctx, n, rate, send); err != nil {
		return 0, fmt.Errorf("broker: %w", err)
	}
	select {
	case err = <-consumed:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		return 0, fmt.Errorf("broker: %w", err)
	}
	after, err := b.snapshot(ctx, rabbit)
	if err != nil {
		return 0, err
	}
	return b.addLatencies("broker", lat, before, after, rabbit), nil
}

// consumeLatencyQueue consumes latencyQueue on ch as the daemon consumes
// jobs: prefetch messages at most unacked, manual acks.
func consumeLatencyQueue(ch *amqp.Channel, prefetch int) (<-chan amqp.Delivery, error) {
	if err := ch.Qos(prefetch, 0, false); err != nil { // false: per consumer, as the daemon
		return nil, fmt.Errorf("set prefetch: %w", err)
	}
	deliveries, err := ch.Consume(latencyQueue, "fpmq-bench-latency",
		false, // auto-ack: no, as the daemon
		false, // exclusive
		false, // no-local
		false, // no-wait
		nil,
	)
	if err != nil {
		return nil, fmt.Errorf("consume: %w", err)
	}
	return deliveries, nil
}

// receiveLatencies acks n deliveries one by one, each carrying its send
// time in µs since the epoch as its body, and returns the time from send to
// delivery of each, in ms. It fails if the deliveries end first, a body is
// not a number or an ack fails.
func receiveLatencies(deliveries <-chan amqp.Delivery, n int) ([]float64, error) {
	lat := make([]float64, 0, n)
	for len(lat) < n {
		d, ok := <-deliveries
		if !ok {
			return nil, fmt.Errorf("deliveries ended after %d of %d", len(lat), n)
		}
		at := time.Now().UnixMicro()
		sent, err := strconv.ParseInt(string(d.Body), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("message %q: %w", d.Body, err)
		}
		lat = append(lat, float64(at-sent)/1000)
		if err := d.Ack(false); err != nil { // false: this delivery only
			return nil, fmt.Errorf("ack: %w", err)
		}
	}
	return lat, nil
}
