package broker

import (
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Returns matches the basic.return frames of one channel in confirm mode to
// the publishes they answer, by exchange, routing key and message ID. It is
// safe for concurrent use.
//
// It relies on an order that RabbitMQ and the library keep: the broker sends
// the return of a mandatory message before its confirm, and the library
// hands the return to the channel registered here before it completes the
// confirm. A publisher that has seen its confirm therefore finds its return,
// if any, already buffered. Returns is nil-safe: a nil *Returns holds none.
type Returns struct {
	mu       sync.Mutex
	incoming chan amqp.Return            // registered with the channel; nil once it closed
	pending  map[returnKey][]amqp.Return // received and not yet taken, oldest first
}

type returnKey struct{ exchange, routingKey, messageID string }

// NewReturns registers for the returns of ch. buffer must hold every return
// not yet taken: the library blocks its reader on a full channel (and drops
// the return after a few seconds). Since each publisher takes its return
// once its confirm arrived, the number of publishes awaiting a confirm
// bounds it.
func NewReturns(ch *amqp.Channel, buffer int) *Returns {
	return &Returns{
		incoming: ch.NotifyReturn(make(chan amqp.Return, buffer)),
		pending:  make(map[returnKey][]amqp.Return),
	}
}

// Take reports whether the broker returned the message published to
// exchange with routingKey and messageID, and if so returns and forgets the
// oldest such return. Call it once the message's confirm arrived.
func (r *Returns) Take(exchange, routingKey, messageID string) (amqp.Return, bool) {
	if r == nil {
		return amqp.Return{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for drained := false; !drained; {
		select {
		case ret, ok := <-r.incoming:
			if !ok {
				r.incoming = nil // closed with the channel; a nil channel is never ready
				drained = true
				break
			}
			k := returnKey{ret.Exchange, ret.RoutingKey, ret.MessageId}
			r.pending[k] = append(r.pending[k], ret)
		default:
			drained = true
		}
	}
	k := returnKey{exchange, routingKey, messageID}
	rets := r.pending[k]
	if len(rets) == 0 {
		return amqp.Return{}, false
	}
	if len(rets) == 1 {
		delete(r.pending, k)
	} else {
		r.pending[k] = rets[1:]
	}
	return rets[0], true
}
