package deadletter

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ErrQueueNotFound means the dead-letter queue does not exist: the daemon
// declares it when it starts, so either it never ran with this queue name
// or DEAD_LETTER_QUEUE names another.
var ErrQueueNotFound = errors.New("queue not found")

// idleCheck is how long a read waits for the next delivery before it asks
// the broker whether any message is left for it.
const idleCheck = time.Second

// Session reads one dead-letter queue on a channel of its own. It counts
// the messages ready when it opens, and reads at most that many: they
// arrive in queue order and stay unacknowledged, held by the session,
// unless Ack settles them. Close gives every message still held back to
// the queue, where RabbitMQ puts it again in its former position.
type Session struct {
	ch     *amqp.Channel
	queue  string
	count  int // ready when the session opened
	limit  int // the most Each reads: count, or less after Limit
	closed chan *amqp.Error
	idle   time.Duration // idleCheck; shorter in tests
}

// Open opens a session on the queue named queue, which must exist; it
// does not declare it, which the operators' user is not allowed to do.
// The error wraps ErrQueueNotFound if the queue does not exist.
func Open(conn *amqp.Connection, queue string) (*Session, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	s := &Session{ch: ch, queue: queue, closed: ch.NotifyClose(make(chan *amqp.Error, 1)), idle: idleCheck}
	q, err := ch.QueueDeclarePassive(
		queue,
		true,  // durable
		false, // auto-delete
		false, // exclusive
		false, // no-wait
		nil,
	)
	if err != nil {
		if ae := (*amqp.Error)(nil); errors.As(err, &ae) && ae.Code == amqp.NotFound {
			return nil, fmt.Errorf("queue %q: %w", queue, ErrQueueNotFound)
		}
		return nil, fmt.Errorf("queue %q: %w", queue, err)
	}
	s.count, s.limit = q.Messages, q.Messages
	return s, nil
}

// Queue returns the name of the session's queue.
func (s *Session) Queue() string { return s.queue }

// Count returns the number of messages that were ready when the session
// opened: the most that Each reads.
func (s *Session) Count() int { return s.count }

// Limit makes Each read at most n of the messages, the first n in queue
// order, and ask the broker for no more than that: RabbitMQ has no random
// access into a queue, and this is how a page of a long one is read
// without the broker sending the rest. Count is unchanged. n below 0
// counts as 0; call it before Each.
func (s *Session) Limit(n int) {
	s.limit = min(max(n, 0), s.count)
}

// Each reads the messages present when the session opened (at most the
// Limit), in queue order, and calls visit with each in turn; it returns how many it read.
// It stops early when visit returns an error (which it returns), when ctx
// is done, when the channel closes, or when the queue has nothing left to
// give: others took messages since the count. Each may be called once.
//
// To receive them all at once it consumes with a prefetch of the count,
// or with no limit beyond 65535, RabbitMQ's largest, and then stops at
// the count itself.
func (s *Session) Each(ctx context.Context, visit func(amqp.Delivery) error) (int, error) {
	if s.limit == 0 {
		return 0, nil
	}
	prefetch := s.limit
	if prefetch > math.MaxUint16 {
		prefetch = 0
	}
	if err := s.ch.Qos(prefetch, 0, false); err != nil { // false: for this consumer
		return 0, fmt.Errorf("set prefetch: %w", err)
	}
	deliveries, err := s.ch.ConsumeWithContext(ctx,
		s.queue,
		"",    // a consumer tag chosen by the library
		false, // auto-ack: no, settle each one
		false, // exclusive: no, another operator may read too
		false, // no-local
		false, // no-wait
		nil,
	)
	if err != nil {
		return 0, fmt.Errorf("consume %q: %w", s.queue, err)
	}
	read, empty := 0, 0
	idle := time.NewTimer(s.idle)
	defer idle.Stop()
	for read < s.limit {
		idle.Reset(s.idle)
		select {
		case d, ok := <-deliveries:
			if !ok {
				if err := ctx.Err(); err != nil {
					return read, err
				}
				return read, s.closeError(fmt.Sprintf("consume %q", s.queue))
			}
			read, empty = read+1, 0
			if err := visit(d); err != nil {
				return read, err
			}
		case <-idle.C:
			// Messages already sent to us may still be on their way:
			// give up only when the broker has none left twice in a row.
			q, err := s.ch.QueueDeclarePassive(s.queue, true, false, false, false, nil) // durable, not auto-delete, not exclusive, wait
			if err != nil {
				return read, fmt.Errorf("queue %q: %w", s.queue, err)
			}
			if q.Messages > 0 {
				empty = 0
				continue
			}
			if empty++; empty == 2 {
				return read, nil
			}
		case <-ctx.Done():
			return read, ctx.Err()
		}
	}
	return read, nil
}

// Ack deletes d from the queue. With sync set, it returns only once the
// broker has taken the ack in: no ack of AMQP 0-9-1 is answered, so it
// follows it with a request on the same channel, which the broker answers
// after it handled the ack.
func (s *Session) Ack(d amqp.Delivery, sync bool) error {
	if err := d.Ack(false); err != nil { // false: this message only
		return fmt.Errorf("ack: %w", err)
	}
	if !sync {
		return nil
	}
	if _, err := s.ch.QueueDeclarePassive(s.queue, true, false, false, false, nil); err != nil { // durable, not auto-delete, not exclusive, wait
		return fmt.Errorf("ack: %w", err)
	}
	return nil
}

// Close closes the session's channel. Every message read and not acked
// goes back to the queue, in its former position; once Close returned
// nil, the broker has handled every ack sent before it.
func (s *Session) Close() error {
	if err := s.ch.Close(); err != nil && !errors.Is(err, amqp.ErrClosed) {
		return fmt.Errorf("close channel: %w", err)
	}
	return nil
}

// closeError says why the channel closed, if the broker said.
func (s *Session) closeError(op string) error {
	select {
	case e, ok := <-s.closed:
		if ok && e != nil {
			return fmt.Errorf("%s: channel closed: %w", op, e)
		}
	default:
	}
	return fmt.Errorf("%s: the broker cancelled the read (was the queue deleted?)", op)
}
