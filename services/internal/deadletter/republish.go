package deadletter

import (
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/broker"
	"github.com/fpmq/fpmq/services/internal/outcome"
	"github.com/fpmq/fpmq/services/internal/tracing"
)

// daemonHeaderPrefix starts the name of every header the daemon writes
// (the outcome.Header constants): its bookkeeping of attempts and failures.
const daemonHeaderPrefix = "x-fpmq-"

// The counts of deliveries a quorum queue adds to the messages it
// delivers (x-acquired-count since RabbitMQ 4.3): they count the dead
// copy's deliveries, not the job's.
const (
	deliveryCountHeader = "x-delivery-count"
	acquiredCountHeader = "x-acquired-count"
)

// CleanHeaders returns a copy of h without the daemon's headers (every
// x-fpmq-* one: attempts, reason, last status and error, queue) and
// without the broker's delivery counts, so that a replayed job starts again
// at attempt 1. Other headers, x-death included, are kept. The result is
// never nil.
func CleanHeaders(h amqp.Table) amqp.Table {
	clean := make(amqp.Table, len(h))
	for k, v := range h {
		if strings.HasPrefix(k, daemonHeaderPrefix) || k == deliveryCountHeader || k == acquiredCountHeader {
			continue
		}
		clean[k] = v
	}
	return clean
}

// Republish returns the message to publish to replay the dead job d: its
// body and properties unchanged, persistent, with CleanHeaders. Two
// properties are left out: the expiration, which would let the broker drop
// the replayed job, and the user id, which RabbitMQ accepts only from the
// user it names.
//
// The replayed job runs in a trace of its own, linked to the dead job's:
// its traceparent and tracestate headers are dropped, and the traceparent
// goes to outcome.HeaderReplayOf, which the daemon links its span to. Its
// wait in the queue starts at now, the replay: outcome.HeaderTimestampMs
// says so (the AMQP timestamp keeps the first publication's).
func Republish(d amqp.Delivery, now time.Time) amqp.Publishing {
	msg := broker.CopyOf(d)
	msg.Headers = CleanHeaders(d.Headers)
	msg.Headers[outcome.HeaderTimestampMs] = now.UnixMilli()
	if tp, ok := msg.Headers[tracing.HeaderTraceparent]; ok {
		msg.Headers[outcome.HeaderReplayOf] = tp
		delete(msg.Headers, tracing.HeaderTraceparent)
		delete(msg.Headers, tracing.HeaderTracestate)
	}
	return msg
}
