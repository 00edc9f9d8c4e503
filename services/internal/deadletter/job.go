// Package deadletter is what operators do with the dead-letter queue: list
// the dead jobs, show one whole, replay them to the queue they came from, or
// purge them. It reads the queue without changing it: it takes the
// messages present at the start without acknowledging them, acks only those
// it replayed or purged, and closes its channel, so that RabbitMQ puts every
// other one back where it was.
//
// The daemon writes the dead letters (services/internal/dispatch); the
// header names and reasons they carry are in services/internal/outcome.
package deadletter

import (
	"cmp"
	"math"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/outcome"
)

// Job is one dead-lettered message, with the daemon's headers read out.
type Job struct {
	ID   string // the message id; empty if the publisher set none
	Name string // the AMQP type property, the job's name; may be empty
	// Reason is outcome.HeaderReason, one of the outcome.Reason constants;
	// for a message the broker dead-lettered itself (a quorum queue's
	// delivery limit, an expired or rejected message), "broker: " and
	// the reason of its latest x-death, such as "broker: delivery_limit".
	Reason     string
	Attempts   int       // outcome.HeaderAttempts: attempts made; 0 if absent
	LastStatus int       // outcome.HeaderLastStatus: the worker's last HTTP status; 0 if none
	LastError  string    // outcome.HeaderLastError: the last failure, as text
	Queue      string    // outcome.HeaderQueue: the job queue it came from; empty if absent
	Timestamp  time.Time // when the job was published; zero if the message has no timestamp
	// Deliveries is how often a quorum queue delivered this dead copy
	// before (its x-delivery-count or x-acquired-count header); 0 for a
	// classic queue.
	Deliveries int
	// Message is the whole delivery: body, properties, headers, and the
	// tag to settle it with.
	Message amqp.Delivery
}

// deathHeader is what RabbitMQ adds to a message it dead-letters itself
// (RabbitMQ's dead-lettering guide): an array of tables, the latest death
// first, each with the "reason" and the "queue" it left.
const deathHeader = "x-death"

// lastDeath returns the reason and the queue of the latest of a message's
// deaths, or empty strings. A job that waited in a retry or delay queue has
// died there once already ("expired"); only the latest death says why the
// broker moved it to the dead-letter queue.
func lastDeath(h amqp.Table) (reason, queue string) {
	deaths, _ := h[deathHeader].([]any)
	if len(deaths) == 0 {
		return "", ""
	}
	latest, _ := deaths[0].(amqp.Table)
	return stringHeader(latest, "reason"), stringHeader(latest, "queue")
}

// BrokerReasonPrefix starts the Reason of a job the broker dead-lettered.
const BrokerReasonPrefix = "broker: "

// JobOf reads the daemon's headers of a dead-letter delivery. Headers of
// an unexpected type read as absent.
func JobOf(d amqp.Delivery) Job {
	reason, queue := stringHeader(d.Headers, outcome.HeaderReason), stringHeader(d.Headers, outcome.HeaderQueue)
	if reason == "" {
		// Not the daemon's dead letter: maybe the broker's.
		if why, from := lastDeath(d.Headers); why != "" {
			reason, queue = BrokerReasonPrefix+why, cmp.Or(queue, from)
		}
	}
	return Job{
		ID:         d.MessageId,
		Name:       d.Type,
		Reason:     reason,
		Attempts:   intHeader(d.Headers, outcome.HeaderAttempts),
		LastStatus: intHeader(d.Headers, outcome.HeaderLastStatus),
		LastError:  stringHeader(d.Headers, outcome.HeaderLastError),
		Queue:      queue,
		Timestamp:  d.Timestamp,
		Deliveries: max(intHeader(d.Headers, deliveryCountHeader), intHeader(d.Headers, acquiredCountHeader)),
		Message:    d,
	}
}

// Age returns how long before now the job was published, or -1 if the
// message has no timestamp. A timestamp in the future counts as age 0.
func (j Job) Age(now time.Time) time.Duration {
	if j.Timestamp.IsZero() {
		return -1
	}
	return max(now.Sub(j.Timestamp), 0)
}

func stringHeader(h amqp.Table, name string) string {
	switch v := h[name].(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return ""
}

func intHeader(h amqp.Table, name string) int {
	n, _ := outcome.Int(h[name])
	return int(max(min(n, math.MaxInt32), math.MinInt32))
}
