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

// ErrNotSent means a message was not sent at all: ctx ended while the
// broker blocked the connection. Sending it again cannot make a duplicate.
var ErrNotSent = errors.New("message not sent")

// Publisher publishes messages to queues and waits for the broker's
// confirm, on a channel of its own. It is safe for concurrent use.
type Publisher struct {
	ch      *amqp.Channel
	returns *Returns
	// blocks gates Publish while the broker blocks the connection.
	blocks *BlockWatch
}

// A PublisherOption changes how NewPublisher makes a Publisher.
type PublisherOption func(*Publisher)

// WithBlockWatch makes the Publisher wait out the blocks that w, a watch of
// the Publisher's own connection, follows, instead of watching the
// connection's blocks itself: one watcher then gates the publishes and
// tells w's onChange. NewPublisher fails if w watches another connection.
func WithBlockWatch(w *BlockWatch) PublisherOption {
	return func(p *Publisher) { p.blocks = w }
}

// NewPublisher opens a channel on conn in confirm mode. The daemon gives it
// a connection that does not consume: a broker under a memory or disk alarm
// blocks publishing connections, and acks sent on a blocked connection
// would stall with the publishes. Unless WithBlockWatch gives it one, the
// Publisher watches conn's blocks itself (WatchBlocked).
func NewPublisher(conn *amqp.Connection, opts ...PublisherOption) (*Publisher, error) {
	p := &Publisher{}
	for _, opt := range opts {
		opt(p)
	}
	if p.blocks != nil && p.blocks.conn != conn {
		return nil, errors.New("new publisher: the block watch is of another connection")
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open publisher channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil { // false: wait for confirm.select-ok
		ch.Close()
		return nil, fmt.Errorf("enable publisher confirms: %w", err)
	}
	p.ch, p.returns = ch, NewReturns(ch, publisherReturns)
	if p.blocks == nil {
		p.blocks = WatchBlocked(conn, nil)
	}
	return p, nil
}

// Publish sends msg to queue through the default exchange, mandatory, and
// waits until the broker confirmed it or ctx is done. It returns nil only if
// the broker took responsibility for the message. Otherwise:
//
//   - while the broker blocks the connection (a memory or disk alarm,
//     RabbitMQ's connection.blocked), Publish does not send, and if ctx ends
//     first, the error wraps ErrNotSent;
//   - an error wrapping ErrNotConfirmed means the broker nacked msg or
//     returned it as unroutable: it does not hold it, and sending it again
//     makes no duplicate;
//   - any other error, ctx's end after msg was sent or a channel closed
//     before the confirm, leaves open whether the broker holds msg: sending
//     it again may make a duplicate.
func (p *Publisher) Publish(ctx context.Context, queue string, msg amqp.Publishing) error {
	select {
	case <-p.blocks.unblocked():
	case <-ctx.Done():
		return fmt.Errorf("publish to %q: %w: the broker blocks the connection (resource alarm): %w", queue, ErrNotSent, ctx.Err())
	}
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
		return fmt.Errorf("publish to %q: no confirm: %w", queue, err)
	}
	if _, returned := p.returns.Take("", queue, msg.MessageId); returned {
		return fmt.Errorf("publish to %q: %w: returned as unroutable (does the queue exist?)", queue, ErrNotConfirmed)
	}
	if !acked && p.ch.IsClosed() {
		// The library settles the confirms a closed channel still owed as
		// nacks: the broker may hold the message all the same.
		return fmt.Errorf("publish to %q: no confirm: %w", queue, amqp.ErrClosed)
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
