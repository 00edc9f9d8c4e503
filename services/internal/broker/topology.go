package broker

import (
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/backoff"
)

// Topology is the daemon's set of queues, all durable and of one type:
//
//   - Queue, the job queue that callers publish to;
//   - one retry queue per entry of RetryDelays: a job that failed waits in
//     one of them until its expiration, then RabbitMQ moves it back to Queue
//     by dead-lettering, so that no scheduled retry lives in the daemon's
//     memory;
//   - DeadQueue, where jobs that will never succeed are kept for people.
type Topology struct {
	Queue       string
	QueueType   string
	DeadQueue   string
	RetryDelays []time.Duration
}

// RetryQueue returns the name of the retry queue for delays[level]. The name
// carries the delay, so that changing the delays declares new queues rather
// than clashing with the arguments of existing ones.
func (t Topology) RetryQueue(level int) string {
	return fmt.Sprintf("%s.retry.%s", t.Queue, t.RetryDelays[level])
}

// Declare declares every queue of t. It is idempotent; a queue that exists
// with other arguments yields an error wrapping ErrTopology.
func (t Topology) Declare(ch *amqp.Channel) error {
	if _, err := DeclareQueue(ch, t.Queue, t.QueueType); err != nil {
		return err
	}
	if _, err := DeclareQueue(ch, t.DeadQueue, t.QueueType); err != nil {
		return err
	}
	for level := range t.RetryDelays {
		args := queueArgs(t.QueueType)
		// Expired jobs go back to the job queue through the default exchange.
		args["x-dead-letter-exchange"] = ""
		args["x-dead-letter-routing-key"] = t.Queue
		if _, err := declare(ch, t.RetryQueue(level), args); err != nil {
			return err
		}
	}
	return nil
}

// RetryDelays returns the delays before attempts 2..maxAttempts, one per
// retry queue: p.Delay(0) before the second attempt, p.Delay(1) before the
// third, and so on. It is empty when maxAttempts is 1 or less.
func RetryDelays(maxAttempts int, p backoff.Policy) []time.Duration {
	var delays []time.Duration
	for n := range maxAttempts - 1 {
		delays = append(delays, p.Delay(n))
	}
	return delays
}
