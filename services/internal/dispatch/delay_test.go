package dispatch

import (
	"bytes"
	"context"
	"testing"
	"testing/synctest"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/rs/zerolog"

	"github.com/fpmq/fpmq/services/internal/broker"
	"github.com/fpmq/fpmq/services/internal/outcome"
)

// TestNotDueIsForwarded checks that a job due more than a second ahead is
// not run: a copy, the same message, goes to the delay queue of the largest
// delay not above the time left, and the original is acked.
func TestNotDueIsForwarded(t *testing.T) {
	tests := []struct {
		left  time.Duration
		queue string
	}{
		{1500 * time.Millisecond, "jobs.delay.1s"},
		{3 * time.Second, "jobs.delay.2s"},
		{10 * time.Second, "jobs.delay.8s"},
		{70 * time.Second, "jobs.delay.1m4s"},
		{5 * time.Hour, "jobs.delay.34m8s"}, // DelayMax is an hour: the longest queue, then again
	}
	for _, tt := range tests {
		t.Run(tt.left.String(), func(t *testing.T) {
			addr, seen := serve(t, status(200))
			var log bytes.Buffer
			d := newDispatcher(t, addr, &log)
			due := time.Now().Add(tt.left).UnixMilli()
			m, ack := delivery(`{"number":1}`, amqp.Table{outcome.HeaderDue: due, "tenant": "acme"})
			m.Type, m.Priority = "send-mail", 7
			pub := &publisher{}
			res := d.Handle(context.Background(), m, pub)
			if res.Outcome != outcome.Delayed || res.Ran || len(seen()) != 0 {
				t.Fatalf("outcome %s, ran %v, %d requests; want delayed without running", res.Outcome, res.Ran, len(seen()))
			}
			if len(pub.sent) != 1 || pub.sent[0].queue != tt.queue {
				t.Fatalf("published %+v, want one copy to %s", pub.sent, tt.queue)
			}
			c := pub.sent[0].msg
			if c.Headers[outcome.HeaderDue] != due || c.Headers["tenant"] != "acme" || c.Headers[outcome.HeaderAttempt] != nil ||
				c.Type != "send-mail" || c.Priority != 7 || c.MessageId != "m-1" || string(c.Body) != `{"number":1}` || c.Expiration != "" {
				t.Errorf("copy %+v, want the message unchanged", c)
			}
			if got := ack.settled; len(got) != 1 || got[0] != "ack" {
				t.Errorf("settled %v, want [ack]", got)
			}
			if !bytes.Contains(log.Bytes(), []byte(`"outcome":"delayed"`)) {
				t.Errorf("log has no delayed line:\n%s", log.String())
			}
		})
	}
}

// TestDueSoonIsWaitedFor checks that a job due within dueSlack is waited
// for, not forwarded, and that the wait ends when it is due, on a fake
// clock.
func TestDueSoonIsWaitedFor(t *testing.T) {
	for _, left := range []time.Duration{time.Millisecond, 300 * time.Millisecond, 900 * time.Millisecond, dueSlack} {
		synctest.Test(t, func(t *testing.T) {
			d := New(nil, nil, Config{Topology: topology}, zerolog.Nop())
			start := time.Now()
			due := start.Add(left)
			m, ack := delivery(`{"number":1}`, amqp.Table{outcome.HeaderDue: due.UnixMilli()})
			pub := &publisher{}
			var res outcome.Result
			if o, held := d.notDue(context.Background(), m, pub, &res); held {
				t.Fatalf("due in %s: held as %s, want it run", left, o)
			}
			if len(pub.sent) != 0 || len(ack.settled) != 0 || res.Err != nil {
				t.Errorf("due in %s: %d copies, settled %v, error %v; want the delivery left to run", left, len(pub.sent), ack.settled, res.Err)
			}
			// The clock is read in milliseconds.
			if now := time.Now(); now.Before(due.Truncate(time.Millisecond)) || now.Sub(start) > left {
				t.Errorf("due in %s: waited %s", left, now.Sub(start))
			}
		})
	}
}

// TestDueSoonRuns checks that Handle runs a job due within dueSlack once,
// not before it is due, and a job due in the past at once.
func TestDueSoonRuns(t *testing.T) {
	for _, left := range []time.Duration{20 * time.Millisecond, -time.Hour} {
		addr, seen := serve(t, status(200))
		d := newDispatcher(t, addr, &bytes.Buffer{})
		due := time.Now().Add(left)
		m, ack := delivery(`{"number":1}`, amqp.Table{outcome.HeaderDue: due.UnixMilli()})
		pub := &publisher{}
		res := d.Handle(context.Background(), m, pub)
		if res.Outcome != outcome.Succeeded || len(seen()) != 1 || len(pub.sent) != 0 || len(ack.settled) != 1 {
			t.Fatalf("due in %s: outcome %s, %d requests, %d copies, settled %v; want it run once", left, res.Outcome, len(seen()), len(pub.sent), ack.settled)
		}
		// The clock is read in milliseconds.
		if time.Now().Before(due.Truncate(time.Millisecond)) {
			t.Errorf("due in %s: ran before it was due", left)
		}
	}
}

// TestDueWaitEndsWithShutdown checks that shutdown ends the wait for a job
// due soon, which goes back to its queue without running, on a fake clock.
func TestDueWaitEndsWithShutdown(t *testing.T) {
	addr, seen := serve(t, status(200))
	d := newDispatcher(t, addr, &bytes.Buffer{})
	synctest.Test(t, func(t *testing.T) {
		m, ack := delivery(`{"number":1}`, amqp.Table{outcome.HeaderDue: time.Now().Add(900 * time.Millisecond).UnixMilli()})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		res := d.Handle(ctx, m, &publisher{})
		if res.Outcome != outcome.Requeued || len(seen()) != 0 || res.Duration != 50*time.Millisecond {
			t.Errorf("outcome %s after %s, %d requests; want requeued at the shutdown, 50ms in, without running", res.Outcome, res.Duration, len(seen()))
		}
		if got := ack.settled; len(got) != 1 || got[0] != "nack-requeue" {
			t.Errorf("settled %v, want [nack-requeue]", got)
		}
	})
}

// TestDelayedCopyRefusedIsTriedAgain checks that a delay copy the broker
// refuses is held and tried again, as retry copies are.
func TestDelayedCopyRefusedIsTriedAgain(t *testing.T) {
	addr, _ := serve(t, status(200))
	d := newDispatcher(t, addr, &bytes.Buffer{})
	m, ack := delivery(`{"number":1}`, amqp.Table{outcome.HeaderDue: time.Now().Add(time.Minute).UnixMilli()})
	pub := &publisher{fail: broker.ErrNotConfirmed, failTimes: 2}
	res := d.Handle(context.Background(), m, pub)
	if res.Outcome != outcome.Delayed || res.CopyFailures != 2 || len(pub.sent) != 1 || pub.sent[0].queue != "jobs.delay.32s" {
		t.Errorf("outcome %s, %d refusals, sent %+v; want delayed to jobs.delay.32s after 2 refusals", res.Outcome, res.CopyFailures, pub.sent)
	}
	if got := ack.settled; len(got) != 1 || got[0] != "ack" {
		t.Errorf("settled %v, want [ack]", got)
	}
}
