package broker

import (
	"context"
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ErrNotConfirmed means the broker did not take a message: it nacked it,
// returned it as unroutable, or the channel closed before it confirmed.
var ErrNotConfirmed = errors.New("message not confirmed by the broker")

// publisherReturns bounds the returns a Publisher buffers. Publishes in
// flight at once are bounded by the daemon's concurrency, far below it.
const publisherReturns = 1024

// Publisher publishes messages to queues and waits for the broker's
// confirm, on a channel of its own. It is safe for concurrent use.
type Publisher struct {
	ch      *amqp.Channel
	returns *Returns
}

// NewPublisher opens a channel on conn in confirm mode. The daemon gives it
// a connection that does not consume: a broker under a memory or disk alarm
// blocks publishing connections, and acks sent on a blocked connection
// would stall with the publishes.
func NewPublisher(conn *amqp.Connection) (*Publisher, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open publisher channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil { // false: wait for confirm.select-ok
		ch.Close()
		return nil, fmt.Errorf("enable publisher confirms: %w", err)
	}
	return &Publisher{ch: ch, returns: NewReturns(ch, publisherReturns)}, nil
}

// Publish sends msg to queue through the default exchange, mandatory, and
// waits until the broker confirmed it or ctx is done. It returns nil only if
// the broker took responsibility for the message; otherwise the error wraps
// ErrNotConfirmed, or says why the message could not be sent at all.
func (p *Publisher) Publish(ctx context.Context, queue string, msg amqp.Publishing) error {
	dc, err := p.ch.PublishWithDeferredConfirmWithContext(ctx,
		"",    // the default exchange routes by queue name
		queue, // routing key
		true,  // mandatory: a missing queue is an error, not silence
		false, // immediate
		msg,
	)
	if err != nil {
		return fmt.Errorf("publish to %q: %w", queue, err)
	}
	acked, err := dc.WaitContext(ctx)
	if err != nil {
		return fmt.Errorf("publish to %q: %w: %w", queue, ErrNotConfirmed, err)
	}
	if _, returned := p.returns.Take("", queue, msg.MessageId); returned {
		return fmt.Errorf("publish to %q: %w: returned as unroutable (does the queue exist?)", queue, ErrNotConfirmed)
	}
	if !acked {
		return fmt.Errorf("publish to %q: %w: nacked", queue, ErrNotConfirmed)
	}
	return nil
}

// NotifyClose registers c to receive why the publisher's channel closed,
// as amqp.Channel.NotifyClose does: one *amqp.Error if the broker or a lost
// connection closed it, then c is closed; c is closed without a value after
// Close. Give c a buffer of 1, so that the library never waits for it. A
// Publisher whose channel closed cannot publish any more.
func (p *Publisher) NotifyClose(c chan *amqp.Error) chan *amqp.Error {
	return p.ch.NotifyClose(c)
}

// Close closes the publisher's channel. It waits for the broker's answer,
// which a blocked connection does not give: to give up on a blocked
// publisher, close its connection with a deadline instead.
func (p *Publisher) Close() error {
	return p.ch.Close()
}
