package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/integration/stack"
)

// purge empties the job queue.
func (b *bench) purge(ctx context.Context) error {
	ch, closeConn, err := b.sys.channel(ctx)
	if err != nil {
		return err
	}
	defer closeConn()
	if _, err := ch.QueuePurge(jobQueue, false); err != nil { // false: wait for purge-ok
		return fmt.Errorf("purge: %w", err)
	}
	return nil
}

// refill empties the queue and publishes n jobs {"number":N} into it, as
// the caller would. Nothing consumes meanwhile.
func (b *bench) refill(ctx context.Context, n int) error {
	if err := b.purge(ctx); err != nil {
		return err
	}
	return b.publishConfirmed(ctx, n, func(i int) []byte { return jobJSON(int64(i + 1)) })
}

// publishConfirmed publishes body(i) for i from 0 to n-1 with publisher
// confirms and returns once the broker confirmed them all.
func (b *bench) publishConfirmed(ctx context.Context, n int, body func(i int) []byte) error {
	ch, closeConn, err := b.sys.channel(ctx)
	if err != nil {
		return err
	}
	defer closeConn()
	return stack.PublishConfirmed(ctx, ch, jobQueue, n, func(i int) amqp.Publishing { return message(body(i)) })
}

// publish publishes one job without waiting for a confirm.
func publish(ctx context.Context, ch *amqp.Channel, body []byte) error {
	return publishMessage(ctx, ch, message(body))
}

// publishMessage publishes m to the job queue without waiting for a confirm.
func publishMessage(ctx context.Context, ch *amqp.Channel, m amqp.Publishing) error {
	err := ch.PublishWithContext(ctx, "", jobQueue,
		true,  // mandatory
		false, // immediate
		m)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

// message wraps a job body as the caller publishes it, with a random
// message id as long as the caller's.
func message(body []byte) amqp.Publishing {
	var id [16]byte
	rand.Read(id[:]) // crypto/rand.Read never fails: it crashes the program instead
	return stack.Job(hex.EncodeToString(id[:]), body)
}

// sampleJob returns the message of a job that bench.php records under tag,
// carrying the time it is built as its send time, and sleeping nap if
// positive.
func sampleJob(i int, tag string, nap time.Duration) []byte {
	b := fmt.Appendf(nil, `{"number":%d,"tag":%q`, i, tag)
	if nap > 0 {
		b = fmt.Appendf(b, `,"sleep":%g`, nap.Seconds())
	}
	return fmt.Appendf(b, `,"sent_us":%d}`, time.Now().UnixMicro())
}

// sampleForm returns the form the daemon sends php-fpm for
// sampleJob(i, tag, 0), as PHP's http_build_query builds it: the same
// fields in the same order.
func sampleForm(i int, tag string) []byte {
	return fmt.Appendf(nil, "number=%d&tag=%s&sent_us=%d", i, url.QueryEscape(tag), time.Now().UnixMicro())
}

// jobJSON returns the message of a job with just a number, as the caller
// publishes it.
func jobJSON(n int64) []byte { return fmt.Appendf(nil, `{"number":%d}`, n) }

// jobForm returns the form the daemon sends php-fpm for jobJSON(n).
func jobForm(n int64) []byte { return fmt.Appendf(nil, "number=%d", n) }
