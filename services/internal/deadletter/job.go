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
	"math"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/outcome"
)

// Job is one dead-lettered message, with the daemon's headers read out.
type Job struct {
	ID         string    // the message id; empty if the publisher set none
	Name       string    // the AMQP type property, the job's name; may be empty
	Reason     string    // outcome.HeaderReason: one of the outcome.Reason constants
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

// JobOf reads the daemon's headers of a dead-letter delivery. Headers of
// an unexpected type read as absent.
func JobOf(d amqp.Delivery) Job {
	return Job{
		ID:         d.MessageId,
		Name:       d.Type,
		Reason:     stringHeader(d.Headers, outcome.HeaderReason),
		Attempts:   intHeader(d.Headers, outcome.HeaderAttempts),
		LastStatus: intHeader(d.Headers, outcome.HeaderLastStatus),
		LastError:  stringHeader(d.Headers, outcome.HeaderLastError),
		Queue:      stringHeader(d.Headers, outcome.HeaderQueue),
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
