package queuepolicy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fpmq/fpmq/services/internal/broker"
	"github.com/fpmq/fpmq/services/internal/management"
)

// reportPoll is the pause between two questions to the API while it has
// not reported a queue's policies: it does every 5 s by default.
const reportPoll = 500 * time.Millisecond

// Reasons why "daemon dead" must not read a dead-letter queue; test them
// with errors.Is.
var (
	// ErrLimited: the queue is a quorum queue with a delivery limit, and
	// each read counts toward it.
	ErrLimited = errors.New("a delivery limit is in effect")
	// ErrUnverified: whether a delivery limit is in effect could not be
	// checked (the management API is off, or did not answer).
	ErrUnverified = errors.New("the delivery limit could not be checked")
)

// CheckDead tells whether "daemon dead" may read the dead-letter queue
// name through c: it gives back every message it reads but does not
// delete, and a quorum queue counts each such read as a delivery. It
// returns nil when no read can make RabbitMQ drop a message: the queue is
// classic, or a quorum queue without a delivery limit or with one of
// broker.DeadDeliveryLimit or more. Otherwise its error says why and what
// to do, and wraps ErrLimited, ErrUnverified (c nil means the API is off)
// or management.ErrNotFound (no such queue). While RabbitMQ has not
// reported the policies of a quorum queue yet (see Verdict.Unknown), it
// asks again every reportPoll until ctx ends.
func CheckDead(ctx context.Context, c *management.Client, name string) error {
	if c == nil {
		return fmt.Errorf("%w: RABBITMQ_MANAGEMENT_URL is off, so nothing tells whether %s is a quorum queue with a delivery limit, which would drop jobs read too often; "+
			"set RABBITMQ_MANAGEMENT_URL to RabbitMQ's management API (the user needs the management tag)", ErrUnverified, name)
	}
	q, err := c.Queue(ctx, name)
	// A queue just created, or a broker just started, reports its
	// policies within seconds: wait for them while ctx lets.
	notReported := func() error {
		return fmt.Errorf("%w: RabbitMQ has not reported yet which policies apply to %s, which it does within seconds of the queue's creation or of its own start: try again shortly",
			ErrUnverified, name)
	}
	for err == nil && q.Type == broker.QueueQuorum && !Reported(q) {
		t := time.NewTimer(reportPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return notReported()
		case <-t.C:
		}
		// ctx may end during the request: it is still the report that
		// did not come in time.
		if q, err = c.Queue(ctx, name); err != nil && ctx.Err() != nil {
			return notReported()
		}
	}
	if errors.Is(err, management.ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("%w: the management API at %s did not say whether %s has a delivery limit, which would drop jobs read too often: %w; "+
			"set RABBITMQ_MANAGEMENT_URL to RabbitMQ's management API (the user needs the management tag)", ErrUnverified, c.URL(), name, err)
	}
	if q.Type != broker.QueueQuorum {
		return nil
	}
	version, err := c.Version(ctx)
	if err != nil {
		return fmt.Errorf("%w: the management API at %s did not say RabbitMQ's version, which decides the default delivery limit of %s: %w", ErrUnverified, c.URL(), name, err)
	}
	b := Broker{Major: MajorVersion(version)}
	limit, ok := DeliveryLimit(q, b)
	if !ok || limit >= broker.DeadDeliveryLimit {
		return nil
	}
	return fmt.Errorf("%w: %s is a quorum queue with a delivery limit of %d (%s): RabbitMQ drops a message delivered that often, and every read counts as a delivery. %s",
		ErrLimited, name, limit, limitSource(q), liftAdvice(q, name))
}

// limitSource says where q's delivery limit comes from.
func limitSource(q management.Queue) string {
	_, hasArg := q.Arguments.Int("x-delivery-limit")
	_, hasPol := q.Effective.Int("delivery-limit")
	var from []string
	if hasArg {
		from = append(from, "its x-delivery-limit argument")
	}
	if hasPol {
		from = append(from, "the policies in effect"+policyNames(q))
	}
	if len(from) == 0 {
		return "RabbitMQ 4's default, as nothing sets one" + policyNames(q)
	}
	return "from " + strings.Join(from, " and ")
}

// policyNames names the policies in effect on q, for messages.
func policyNames(q management.Queue) string {
	var names []string
	if q.Policy != "" {
		names = append(names, fmt.Sprintf("policy %q", q.Policy))
	}
	if q.OperatorPolicy != "" {
		names = append(names, fmt.Sprintf("operator policy %q", q.OperatorPolicy))
	}
	if len(names) == 0 {
		return "; no policy applies"
	}
	return ": " + strings.Join(names, " and ")
}

// liftAdvice says how to lift the delivery limit of the dead-letter queue
// name.
func liftAdvice(q management.Queue, name string) string {
	own := fmt.Sprintf(`{"delivery-limit":%d}`, broker.DeadDeliveryLimit)
	switch {
	case q.Policy != "" && !isOwn(q.Policy):
		return fmt.Sprintf("Policy %q applies instead of fpmq's (RabbitMQ applies one policy per queue, the one of highest priority): add %s to it, leave %s out of its pattern, or give fpmq's policy a higher priority (POLICY_PRIORITY in the rabbitmq image)",
			q.Policy, own, name)
	case q.OperatorPolicy != "":
		return fmt.Sprintf("Lift the delivery-limit of operator policy %q, or leave %s out of its pattern", q.OperatorPolicy, name)
	}
	return fmt.Sprintf("Lift it with a policy %s on %s (see the daemon's README, Policies)", own, name)
}

// isOwn tells whether policy is one of the rabbitmq image's fpmq-* policies.
func isOwn(policy string) bool { return strings.HasPrefix(policy, "fpmq-") }
