package broker

import (
	"context"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// CopyOf returns a persistent publishing with d's body, properties and
// headers (a copy of the headers table: changing it leaves d alone).
func CopyOf(d amqp.Delivery) amqp.Publishing {
	headers := make(amqp.Table, len(d.Headers)+6)
	for k, v := range d.Headers {
		headers[k] = v
	}
	return amqp.Publishing{
		Headers:         headers,
		ContentType:     d.ContentType,
		ContentEncoding: d.ContentEncoding,
		DeliveryMode:    amqp.Persistent,
		Priority:        d.Priority,
		CorrelationId:   d.CorrelationId,
		ReplyTo:         d.ReplyTo,
		MessageId:       d.MessageId,
		Timestamp:       d.Timestamp,
		Type:            d.Type,
		AppId:           d.AppId,
		Body:            d.Body,
	}
}

// Sender publishes a message and waits for the broker's confirm, with
// Publisher.Publish's errors.
type Sender interface {
	Publish(ctx context.Context, queue string, msg amqp.Publishing) error
}

// requeueCopyTimeout bounds the publish of a requeued copy; past it the
// delivery is requeued with a nack instead.
const requeueCopyTimeout = 5 * time.Second

// CountsReturns reports whether the broker counts each return of a
// delivery of a queue of this type toward a delivery limit, and drops (or
// dead-letters) a message past it: quorum queues do (a limit of 20 by
// default since RabbitMQ 4.0, none by default before; on RabbitMQ 4.0-4.2
// every return counts, from 4.3 a basic.nack with requeue does not, per
// RabbitMQ's quorum queue guide); classic queues have no delivery limit.
func CountsReturns(queueType string) bool { return queueType == QueueQuorum }

// Requeue gives d back to queue, the queue it came from, without counting a
// delivery against it: for a job that did not run, or did not finish,
// through no fault of its own (the pool went away, a shutdown, a pause).
//
// With byCopy false it nacks d with requeue, which keeps d's place at the
// head of the queue. With byCopy true, for a queue whose broker counts
// returns (see CountsReturns), it publishes a copy of d to the tail of
// queue through pub and acks d once the broker confirmed the copy, so that
// the copy starts with no deliveries counted; if the copy cannot be
// published, it nacks d with requeue after all. It returns the error of the
// final ack or nack: an error means the channel is gone, and the broker
// returns d itself.
func Requeue(ctx context.Context, pub Sender, d amqp.Delivery, queue string, byCopy bool) error {
	if byCopy && pub != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requeueCopyTimeout)
		err := pub.Publish(ctx, queue, CopyOf(d))
		cancel()
		if err == nil {
			return d.Ack(false) // false: this delivery only
		}
		// Not taken, or not known to be: in the second case the broker
		// may hold the copy, and requeueing d too may run the job twice,
		// which beats losing it.
	}
	return d.Nack(false, true) // false: this delivery only; true: requeue
}
