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
//   - one delay queue per power of two seconds up to DelayMax (see
//     DelayQueue), where a job published with a delay waits, and returns
//     to Queue the same way;
//   - DeadQueue, where jobs that will never succeed are kept for people.
//
// MaxPriority, when above 0, makes a classic job queue a priority queue
// (x-max-priority); quorum queues take no argument for priorities.
type Topology struct {
	Queue       string
	QueueType   string
	DeadQueue   string
	RetryDelays []time.Duration
	DelayMax    time.Duration
	MaxPriority int
}

// DelayQueue returns the name of the delay queue that holds jobs for d, one
// of DelayBuckets. Like a retry queue's, the name carries the delay.
func DelayQueue(queue string, d time.Duration) string {
	return fmt.Sprintf("%s.delay.%s", queue, d)
}

// DelayQueue returns the name of t's delay queue for d.
func (t Topology) DelayQueue(d time.Duration) string { return DelayQueue(t.Queue, d) }

// DelayBuckets returns the delays of the delay queues up to longest: 1s, 2s,
// 4s, ..., up to the largest power of two seconds not above longest. It is
// empty when longest is under a second.
func DelayBuckets(longest time.Duration) []time.Duration {
	var ds []time.Duration
	for d := time.Second; d <= longest; d *= 2 {
		ds = append(ds, d)
	}
	return ds
}

// DelayBucket returns the delay of the queue a job due in d goes to: the largest
// of DelayBuckets(longest) not above d. It returns false when d is under a
// second, or longest is: such a job goes straight to the job queue.
func DelayBucket(d, longest time.Duration) (time.Duration, bool) {
	limit := min(d, longest)
	if limit < time.Second {
		return 0, false
	}
	b := time.Second
	for b*2 <= limit {
		b *= 2
	}
	return b, true
}

// RetryQueue returns the name of the retry queue for delays[level]. The name
// carries the delay, so that changing the delays declares new queues rather
// than clashing with the arguments of existing ones.
func (t Topology) RetryQueue(level int) string {
	return fmt.Sprintf("%s.retry.%s", t.Queue, t.RetryDelays[level])
}

// RetryLevels returns the levels of RetryDelays that have a retry queue of
// their own, in order: the first level of each distinct delay. Capped
// delays repeat (Policy.Max), and the attempts that share a delay share
// its queue.
func (t Topology) RetryLevels() []int {
	var levels []int
	for level, d := range t.RetryDelays {
		if level == 0 || d != t.RetryDelays[level-1] {
			levels = append(levels, level)
		}
	}
	return levels
}

// Declare declares every queue of t, on a channel of its own from conn
// (or a few: see DeclareJobQueue), closed at the end. It is idempotent; a
// queue that exists with other arguments yields an error wrapping
// ErrTopology, except for the dead-letter arguments of the job and
// dead-letter queues (see DeclareJobQueue and DeclareDeadQueue).
func (t Topology) Declare(conn *amqp.Connection) error {
	ch, _, err := DeclareJobQueue(conn, nil, t.Queue, t.QueueType, t.MaxPriority, t.DeadQueue)
	if err != nil {
		return err
	}
	ch, _, err = DeclareDeadQueue(conn, ch, t.DeadQueue, t.QueueType)
	if err != nil {
		return err
	}
	defer ch.Close()
	for _, level := range t.RetryLevels() {
		args := queueArgs(t.QueueType)
		// Expired jobs go back to the job queue through the default exchange.
		args["x-dead-letter-exchange"] = ""
		args["x-dead-letter-routing-key"] = t.Queue
		if _, err := declare(ch, t.RetryQueue(level), args); err != nil {
			return err
		}
	}
	for _, d := range DelayBuckets(t.DelayMax) {
		if _, err := declare(ch, t.DelayQueue(d), delayArgs(t.QueueType, t.Queue, d)); err != nil {
			return err
		}
	}
	return nil
}

// delayArgs returns the arguments of the delay queue for d: every message
// expires after d, and then goes back to queue through the default
// exchange. A queue-wide TTL expires messages in order, at the head.
func delayArgs(queueType, queue string, d time.Duration) amqp.Table {
	args := queueArgs(queueType)
	args["x-message-ttl"] = d.Milliseconds()
	args["x-dead-letter-exchange"] = ""
	args["x-dead-letter-routing-key"] = queue
	return args
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
