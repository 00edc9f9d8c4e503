// Package queuepolicy checks that what RabbitMQ applies to fpmq's queues,
// from their arguments and the policies in effect, is what fpmq relies on:
// a job the broker drops goes to the dead-letter queue, and a dead letter
// is never dropped. RabbitMQ applies one policy per queue, the one of
// highest priority, so a policy an operator adds for other reasons (a
// catch-all "max-length", say) replaces fpmq's own policies on its queues.
// The daemon watches this (Watcher) and "daemon dead" checks the
// dead-letter queue before it reads it (CheckDead).
package queuepolicy

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/fpmq/fpmq/services/internal/broker"
	"github.com/fpmq/fpmq/services/internal/management"
	"github.com/fpmq/fpmq/services/internal/queuestat"
)

// Problem is one way in which what RabbitMQ applies to a queue differs
// from what fpmq relies on.
type Problem struct {
	// Key is the policy key at fault, as a policy names it
	// ("dead-letter-exchange", "delivery-limit", "expires", ...); the
	// queue argument of the same setting is "x-" Key.
	Key string
	// What says what RabbitMQ does because of it, in a sentence.
	What string
}

// Verdict is what Check found for one queue.
type Verdict struct {
	queuestat.Queue
	// Missing: the queue does not exist; nothing else is known.
	Missing bool
	// Unknown: RabbitMQ has not reported the policies in effect on the
	// queue yet, which it does with the queue's statistics, every few
	// seconds: a queue just created, or a broker just started, shows none
	// for 5 to 10 s. Nothing else is known.
	Unknown bool
	// Type is the queue's type: classic or quorum.
	Type string
	// Policy and OperatorPolicy name the policies in effect; "" for none.
	Policy, OperatorPolicy string
	// Problems are empty when the queue is as fpmq relies on.
	Problems []Problem
}

// OK tells whether the queue exists, is known, and has no problem.
func (v Verdict) OK() bool { return !v.Missing && !v.Unknown && len(v.Problems) == 0 }

// Known tells whether v says anything of the queue: it exists and
// RabbitMQ reported its policies.
func (v Verdict) Known() bool { return !v.Missing && !v.Unknown }

// Keys returns the keys of v's problems, for logs.
func (v Verdict) Keys() []string {
	var keys []string
	for _, p := range v.Problems {
		keys = append(keys, p.Key)
	}
	return keys
}

// Broker is what Check must know of the broker itself.
type Broker struct {
	// Major is RabbitMQ's major version: from 4 on, a quorum queue has a
	// delivery limit of 20 unless an argument or a policy sets one. 0:
	// unknown, taken as 4, the safe side.
	Major int
}

// MajorVersion returns the major version of a RabbitMQ version such as
// "4.0.5", or 0 if version does not start with one.
func MajorVersion(version string) int {
	major, _, _ := strings.Cut(version, ".")
	n, err := strconv.Atoi(major)
	if err != nil {
		return 0
	}
	return n
}

// defaultDeliveryLimit is the delivery limit of a quorum queue for which
// nothing sets one, from RabbitMQ 4 on.
const defaultDeliveryLimit = 20

// Check returns a verdict for each queue of t (queuestat.Queues order),
// from what the management API says of the vhost's queues, qs.
//
// What fpmq relies on, queue by queue:
//   - the job queue dead-letters to the dead-letter queue: exchange "" and
//     routing key t.DeadQueue in effect, by argument or policy;
//   - the dead-letter queue keeps every dead letter: a quorum one has no
//     delivery limit below broker.DeadDeliveryLimit (each read of "daemon
//     dead" counts as a delivery), and no queue drops its messages for a
//     TTL or a length limit (with overflow drop-head, the default);
//   - no queue of t expires: RabbitMQ deletes an unused queue with its
//     messages, and the retry, delay and dead-letter queues have no
//     consumer.
//
// A length limit or a TTL on the job, retry and delay queues is no
// problem: what they drop is dead-lettered, to the dead-letter queue or
// back to the job queue.
func Check(t broker.Topology, b Broker, qs []management.Queue) []Verdict {
	byName := make(map[string]management.Queue, len(qs))
	for _, q := range qs {
		byName[q.Name] = q
	}
	var verdicts []Verdict
	for _, want := range queuestat.Queues(t) {
		q, ok := byName[want.Name]
		if !ok {
			verdicts = append(verdicts, Verdict{Queue: want, Missing: true})
			continue
		}
		verdicts = append(verdicts, checkQueue(want, t, b, q))
	}
	return verdicts
}

// checkQueue returns the verdict of q, whose name and role are want.
func checkQueue(want queuestat.Queue, t broker.Topology, b Broker, q management.Queue) Verdict {
	s := settings{q: q, major: b.Major}
	v := Verdict{Queue: want, Type: q.Type, Policy: q.Policy, OperatorPolicy: q.OperatorPolicy}
	if !Reported(q) {
		v.Unknown = true
		return v
	}
	add := func(key, what string, args ...any) {
		v.Problems = append(v.Problems, Problem{Key: key, What: fmt.Sprintf(what, args...)})
	}
	if ms, ok := s.min("expires"); ok {
		add("expires", "RabbitMQ deletes the queue, with every message in it, once it has been unused for %s", millis(ms))
	}
	switch want.Role {
	case queuestat.RoleJob:
		exchange, hasExchange := s.arg("dead-letter-exchange")
		key, hasKey := s.arg("dead-letter-routing-key")
		switch {
		case !hasExchange:
			add("dead-letter-exchange", "no dead-letter target: a job RabbitMQ drops (a delivery limit, a length limit, a TTL) is lost instead of going to %s", t.DeadQueue)
		case exchange != "":
			add("dead-letter-exchange", "a job RabbitMQ drops goes to exchange %q instead of %s", exchange, t.DeadQueue)
		case !hasKey || key != t.DeadQueue:
			if !hasKey {
				key = t.Queue // the message's own routing key
			}
			add("dead-letter-routing-key", "a job RabbitMQ drops goes to queue %q instead of %s", key, t.DeadQueue)
		}
	case queuestat.RoleDead:
		if q.Type == broker.QueueQuorum {
			if limit, ok := DeliveryLimit(q, b); ok && limit < broker.DeadDeliveryLimit {
				add("delivery-limit", "RabbitMQ drops a dead letter delivered %d times, and each read of daemon dead counts as one: daemon dead refuses to read", limit)
			}
		}
		if ms, ok := s.min("message-ttl"); ok {
			add("message-ttl", "RabbitMQ drops a dead letter %s after it arrived", millis(ms))
		}
		if overflow := s.overflow(); overflow == "drop-head" {
			if n, ok := s.min("max-length"); ok {
				add("max-length", "past %d dead letters RabbitMQ drops the oldest (overflow drop-head)", n)
			}
			if n, ok := s.min("max-length-bytes"); ok {
				add("max-length-bytes", "past %d bytes of dead letters RabbitMQ drops the oldest (overflow drop-head)", n)
			}
		}
	}
	return v
}

// Reported tells whether the management API's answer for q says which
// policies apply: it leaves out effective_policy_definition, with the
// other statistics, until the queue first reported them.
func Reported(q management.Queue) bool { return q.Effective != nil }

// DeliveryLimit returns the delivery limit RabbitMQ applies to the quorum
// queue q, and false if it applies none. It resolves the queue argument
// and the policies as RabbitMQ does (rabbit_quorum_queue): the lower of
// the two, except that a negative value means none from RabbitMQ 4 on,
// where the limit is 20 when nothing sets one.
func DeliveryLimit(q management.Queue, b Broker) (int64, bool) {
	arg, hasArg := q.Arguments.Int("x-delivery-limit")
	pol, hasPol := q.Effective.Int("delivery-limit")
	modern := b.Major == 0 || b.Major >= 4
	var limit int64
	switch {
	case !hasArg && !hasPol:
		if !modern {
			return 0, false
		}
		return defaultDeliveryLimit, true
	case !hasArg:
		limit = pol
	case !hasPol:
		limit = arg
	case modern && (arg < 0 || pol < 0):
		limit = max(arg, pol)
	default:
		limit = min(arg, pol)
	}
	if limit < 0 && modern {
		return 0, false
	}
	// RabbitMQ 3 takes no negative limit: one would drop a message at its
	// first return.
	return max(limit, 0), true
}

// settings resolves what RabbitMQ applies to a queue, from its arguments
// and the policies in effect.
type settings struct {
	q     management.Queue
	major int
}

// arg returns the string setting key, of which the queue argument wins
// over a policy (RabbitMQ's rule for the dead-letter exchange and routing
// key, on classic and quorum queues alike).
func (s settings) arg(key string) (string, bool) {
	if v, ok := s.q.Arguments.String("x-" + key); ok {
		return v, true
	}
	return s.q.Effective.String(key)
}

// min returns the numeric setting key, of which RabbitMQ applies the
// lower of the queue argument and the policy (expires, message-ttl,
// max-length, max-length-bytes).
func (s settings) min(key string) (int64, bool) {
	a, hasArg := s.q.Arguments.Int("x-" + key)
	p, hasPol := s.q.Effective.Int(key)
	switch {
	case hasArg && hasPol:
		return min(a, p), true
	case hasArg:
		return a, true
	case hasPol:
		return p, true
	}
	return 0, false
}

// overflow returns what a length limit does: drop-head (the default),
// reject-publish or reject-publish-dlx. A classic queue's argument wins
// over a policy; a quorum queue's policy wins over its argument.
func (s settings) overflow() string {
	arg, hasArg := s.q.Arguments.String("x-overflow")
	pol, hasPol := s.q.Effective.String("overflow")
	switch {
	case hasArg && hasPol && s.q.Type == broker.QueueQuorum:
		return pol
	case hasArg:
		return arg
	case hasPol:
		return pol
	}
	return "drop-head"
}

// millis writes a number of milliseconds as a duration.
func millis(ms int64) string {
	return strconv.FormatInt(ms, 10) + " ms"
}

// Own returns the definition of fpmq's own policy for the queue of role
// in t, as the rabbitmq image defines it (docker/rabbitmq/definitions.sh),
// in JSON; "" for the queues that have none.
func Own(t broker.Topology, role string) string {
	switch role {
	case queuestat.RoleJob:
		return fmt.Sprintf(`{"dead-letter-exchange":"","dead-letter-routing-key":%q}`, t.DeadQueue)
	case queuestat.RoleDead:
		return fmt.Sprintf(`{"delivery-limit":%d}`, broker.DeadDeliveryLimit)
	}
	return ""
}
