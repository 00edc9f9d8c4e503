package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ErrNotConfirmed means the broker did not take a message: it nacked it,
// returned it as unroutable, or the channel closed before it confirmed.
var ErrNotConfirmed = errors.New("message not confirmed by the broker")

// Publisher publishes messages to queues and waits for the broker's
// confirm, on a channel of its own. It is safe for concurrent use.
type Publisher struct {
	ch      *amqp.Channel
	returns chan amqp.Return

	mu       sync.Mutex
	returned map[returnKey]int // returns not yet claimed by their publisher
}

type returnKey struct{ queue, messageID string }

// NewPublisher opens a channel on conn in confirm mode.
func NewPublisher(conn *amqp.Connection) (*Publisher, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open publisher channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil { // false: wait for confirm.select-ok
		ch.Close()
		return nil, fmt.Errorf("enable publisher confirms: %w", err)
	}
	// RabbitMQ sends a return before the confirm of the same message, and the
	// library hands it to this channel before it records the confirm, so a
	// publisher that sees its confirm finds its return already here. The
	// buffer must hold the returns of all publishes in flight.
	returns := ch.NotifyReturn(make(chan amqp.Return, 1024))
	return &Publisher{ch: ch, returns: returns, returned: map[returnKey]int{}}, nil
}

// Publish sends msg to queue through the default exchange, mandatory, and
// waits until the broker confirmed it or ctx is done. It returns nil only if
// the broker took responsibility for the message.
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
	if p.claimReturn(returnKey{queue, msg.MessageId}) {
		return fmt.Errorf("publish to %q: %w: returned as unroutable (does the queue exist?)", queue, ErrNotConfirmed)
	}
	if !acked {
		return fmt.Errorf("publish to %q: %w: nacked", queue, ErrNotConfirmed)
	}
	return nil
}

// claimReturn reports whether a return for key arrived, and forgets it.
func (p *Publisher) claimReturn(key returnKey) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
drain:
	for {
		select {
		case r, ok := <-p.returns:
			if !ok {
				p.returns = nil // closed with the channel; a nil channel never fires
				break drain
			}
			p.returned[returnKey{r.RoutingKey, r.MessageId}]++
		default:
			break drain
		}
	}
	if p.returned[key] == 0 {
		return false
	}
	if p.returned[key]--; p.returned[key] == 0 {
		delete(p.returned, key)
	}
	return true
}

// Close closes the publisher's channel.
func (p *Publisher) Close() error {
	return p.ch.Close()
}
