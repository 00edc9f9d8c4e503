package dispatch

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/broker"
	"github.com/fpmq/fpmq/services/internal/outcome"
)

// closedAcknowledger is a delivery whose channel closed: every settlement
// fails, as amqp091-go's do.
type closedAcknowledger struct{ acknowledger }

func (a *closedAcknowledger) Ack(uint64, bool) error {
	_ = a.record("ack")
	return amqp.ErrClosed
}

// A job whose ack was lost with its channel (a consumer acknowledgement
// timeout) is acked on its redelivery without running again.
func TestRedeliveryOfFinishedJobIsNotRun(t *testing.T) {
	addr, seen := serve(t, status(200))
	d := newDispatcher(t, addr, &bytes.Buffer{})
	m, _ := delivery(`{"number":1}`, nil)
	m.Acknowledger = &closedAcknowledger{}
	if res := d.Handle(context.Background(), m, &publisher{}); res.Outcome != outcome.Succeeded {
		t.Fatalf("first delivery: %s, want succeeded", res.Outcome)
	}

	again, ack := delivery(`{"number":1}`, nil)
	again.Redelivered = true
	res := d.Handle(context.Background(), again, &publisher{})
	if res.Outcome != outcome.AlreadyDone || len(seen()) != 1 {
		t.Errorf("redelivery: %s after %d runs, want already-done after 1", res.Outcome, len(seen()))
	}
	if got := ack.settled; len(got) != 1 || got[0] != "ack" {
		t.Errorf("redelivery settled %v, want [ack]", got)
	}

	// Another job with the same id, not redelivered, runs.
	other, _ := delivery(`{"number":1}`, nil)
	if res := d.Handle(context.Background(), other, &publisher{}); res.Outcome != outcome.Succeeded || len(seen()) != 2 {
		t.Errorf("a new delivery: %s after %d runs, want succeeded after 2", res.Outcome, len(seen()))
	}
}

// A failed attempt whose retry copy may or may not have reached the broker
// (the publishing channel closed before its confirm) is not published
// again; the job is requeued, and its redelivery counts the attempt
// instead of running the job again.
func TestUnconfirmedCopyIsNotSentTwice(t *testing.T) {
	addr, seen := serve(t, status(500))
	d := newDispatcher(t, addr, &bytes.Buffer{})
	m, ack := delivery(`{"number":1}`, nil)
	pub := &publisher{fail: amqp.ErrClosed, failTimes: 1}
	res := d.Handle(context.Background(), m, pub)
	if res.Outcome != outcome.Requeued || pub.calls != 1 {
		t.Errorf("outcome %s after %d publishes, want requeued after 1", res.Outcome, pub.calls)
	}
	if got := ack.settled; len(got) != 1 || got[0] != "nack-requeue" {
		t.Errorf("settled %v, want [nack-requeue]", got)
	}

	again, ack := delivery(`{"number":1}`, nil)
	again.Redelivered = true
	res = d.Handle(context.Background(), again, pub)
	if res.Outcome != outcome.Retried || len(seen()) != 1 {
		t.Errorf("redelivery: %s after %d runs, want retried after 1", res.Outcome, len(seen()))
	}
	if len(pub.sent) != 1 || pub.sent[0].queue != topology.RetryQueue(0) || pub.sent[0].msg.Headers[outcome.HeaderAttempt] != int64(2) {
		t.Errorf("published %+v, want one copy for attempt 2 in %s", pub.sent, topology.RetryQueue(0))
	}
	if got := ack.settled; len(got) != 1 || got[0] != "ack" {
		t.Errorf("redelivery settled %v, want [ack]", got)
	}
}

// On a quorum queue, which counts returns toward its delivery limit, a job
// the pool could not take goes back as a copy at the tail, and the
// delivery is acked: its count does not grow.
func TestQuorumRequeueByCopy(t *testing.T) {
	d := newDispatcher(t, "unix://"+filepath.Join(t.TempDir(), "missing.sock"), &bytes.Buffer{})
	d.cfg.Topology.QueueType = broker.QueueQuorum
	m, ack := delivery(`{"number":1}`, amqp.Table{outcome.HeaderAttempt: int64(2)})
	pub := &publisher{}
	res := d.Handle(context.Background(), m, pub)
	if res.Outcome != outcome.Requeued {
		t.Errorf("outcome %s, want requeued", res.Outcome)
	}
	if len(pub.sent) != 1 || pub.sent[0].queue != "jobs" || pub.sent[0].msg.Headers[outcome.HeaderAttempt] != int64(2) || pub.sent[0].msg.MessageId != "m-1" {
		t.Errorf("published %+v, want the job as it was, to jobs", pub.sent)
	}
	if got := ack.settled; len(got) != 1 || got[0] != "ack" {
		t.Errorf("settled %v, want [ack]", got)
	}

	// If the copy is refused, the delivery is nacked after all.
	m, ack = delivery(`{"number":1}`, nil)
	d.Handle(context.Background(), m, &publisher{fail: broker.ErrNotConfirmed})
	if got := ack.settled; len(got) != 1 || got[0] != "nack-requeue" {
		t.Errorf("settled %v after a refused copy, want [nack-requeue]", got)
	}
}
