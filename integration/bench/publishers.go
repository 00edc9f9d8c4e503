package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/integration/stack"
)

// The publishers' figures.
const (
	callerRate    = "caller - (with confirms)"
	plainRate     = "plain amqp091-go publisher (no confirms)"
	confirmedRate = "diagnostic: plain amqp091-go publisher with confirms, all in flight at once"
)

// publishers compares the caller, publishing with confirms, with a plain
// amqp091-go publisher without confirms in the bench and, as a diagnostic,
// the same publisher with confirms, each on the same empty queue. Each rate
// runs from its start to the last job in the queue.
func (b *bench) publishers(ctx context.Context) error {
	n := b.opts.callerJobs
	// Opened beforehand, so that connecting is in no publisher's time.
	poll, closeControl, err := b.sys.channel(ctx)
	if err != nil {
		return err
	}
	defer closeControl()
	var input strings.Builder
	for i := range n {
		fmt.Fprintln(&input, i+1)
	}
	for _, p := range []struct {
		name    string
		publish func(ctx context.Context) error
	}{
		{callerRate, func(ctx context.Context) error { return b.runCaller(ctx, input.String()) }},
		{plainRate, func(ctx context.Context) error { return b.plainPublisher(ctx, n, false) }},
		// The least a publisher with confirms can do: publish everything,
		// then wait for the confirms. What it loses against the plain
		// publisher is the broker's price of confirms, which no confirming
		// publisher avoids.
		{confirmedRate, func(ctx context.Context) error { return b.plainPublisher(ctx, n, true) }},
	} {
		if err := b.purge(ctx); err != nil {
			return err
		}
		start := time.Now()
		if err := p.publish(ctx); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		if err := waitReady(ctx, poll, n); err != nil {
			return fmt.Errorf("after %s: %w", p.name, err)
		}
		b.rep.add(secPublish, p.name, "jobs/s", float64(n)/time.Since(start).Seconds())
	}
	return b.purge(ctx)
}

// runCaller runs the caller binary with "-" and input on its standard
// input, until it exits.
func (b *bench) runCaller(ctx context.Context, input string) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, b.sys.callerBin, "-")
	cmd.Env = []string{"AMQP_URL=" + b.sys.URLAt(stack.CallerUser, b.sys.endpoint), "AMQP_QUEUE=" + jobQueue, "CALLER_TIMEOUT=5m"}
	cmd.Stdin = strings.NewReader(input)
	cmd.Stdout = io.Discard
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

// plainPublisher publishes n jobs on a channel of its own, as the caller
// publishes them. With confirm, the channel is in confirm mode and it
// returns once the broker confirmed every job, having waited for none
// before the last was published.
func (b *bench) plainPublisher(ctx context.Context, n int, confirm bool) error {
	ch, closeConn, err := b.sys.channel(ctx)
	if err != nil {
		return err
	}
	defer closeConn()
	if !confirm {
		for i := range n {
			if err := publish(ctx, ch, jobJSON(int64(i+1))); err != nil {
				return err
			}
		}
		return nil
	}
	if err := ch.Confirm(false); err != nil { // false: wait for confirm.select-ok
		return fmt.Errorf("enable publisher confirms: %w", err)
	}
	confirms := make([]*amqp.DeferredConfirmation, 0, n)
	for i := range n {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", jobQueue, true, false, message(jobJSON(int64(i+1)))) // mandatory, not immediate
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		confirms = append(confirms, dc)
	}
	for _, dc := range confirms {
		if ok, err := dc.WaitContext(ctx); err != nil || !ok {
			return fmt.Errorf("job %d not confirmed (%v)", dc.DeliveryTag, err)
		}
	}
	return nil
}

// waitReady waits until the queue holds n ready jobs, asking on ch every
// millisecond so that the wait adds little to a publisher's time.
func waitReady(ctx context.Context, ch *amqp.Channel, n int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		q, err := ch.QueueDeclarePassive(jobQueue, true, false, false, false, nil) // durable, not auto-delete, not exclusive, wait
		if err != nil {
			return fmt.Errorf("inspect queue: %w", err)
		}
		if q.Messages >= n {
			if q.Messages > n {
				return fmt.Errorf("%d jobs in the queue, want %d", q.Messages, n)
			}
			return nil
		}
		if err := sleep(ctx, time.Millisecond); err != nil {
			return fmt.Errorf("%d of %d jobs in the queue: %w", q.Messages, n, err)
		}
	}
}
