package consume

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/amqptest"
	"github.com/fpmq/fpmq/services/internal/backoff"
	"github.com/fpmq/fpmq/services/internal/broker"
	"github.com/fpmq/fpmq/services/internal/outcome"
)

// poolDownError is what a handler returns when the pool cannot take a job.
func poolDownError(d amqp.Delivery) error {
	return fmt.Errorf("job %s: connect to php-fpm: connection refused: %w", d.MessageId, outcome.ErrPoolUnavailable)
}

func TestPauseRequeuesProbesAndResumes(t *testing.T) {
	srv := amqptest.NewServer(t)
	enqueue(t, srv, "a", "b", "c")
	var down atomic.Bool
	down.Store(true)
	var probes atomic.Int32
	h := start(t, srv, func(ctx context.Context, d amqp.Delivery, pub *broker.Publisher) error {
		if down.Load() {
			d.Nack(false, true)
			return poolDownError(d)
		}
		return d.Ack(false)
	}, func(cfg *Config) {
		cfg.Concurrency = 1
		cfg.Prefetch = 3
		cfg.Probe = func(context.Context) error {
			probes.Add(1)
			if down.Load() {
				return errors.New("ping: connection refused")
			}
			return nil
		}
	})

	amqptest.WaitFor(t, "paused", func() bool { return h.c.State() == Paused })
	if err := h.c.PauseReason(); !errors.Is(err, outcome.ErrPoolUnavailable) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("PauseReason() = %v, want the handler's error", err)
	}
	amqptest.WaitFor(t, "the subscription cancelled and every job back in the queue", func() bool {
		q := queueState(t, srv)
		return q.Consumers == 0 && q.Ready == 3 && q.Unacked == 0
	})
	amqptest.WaitFor(t, "the pool probed again after a failed probe", func() bool { return probes.Load() >= 2 })
	if got := h.c.State(); got != Paused {
		t.Errorf("state %s while the probe fails, want paused", got)
	}
	if n := len(acked(srv)); n != 0 {
		t.Errorf("%d jobs acked while paused, want none", n)
	}

	down.Store(false)
	amqptest.WaitFor(t, "every job acked after the resume", func() bool { return len(acked(srv)) == 3 })
	if got, err := h.c.State(), h.c.PauseReason(); got != Consuming || err != nil {
		t.Errorf("state %s, pause reason %v; want consuming and nil", got, err)
	}
	if !slices.Equal(slices.Sorted(slices.Values(acked(srv))), []string{"a", "b", "c"}) {
		t.Errorf("acked %v, want a, b and c once each", acked(srv))
	}
	if n := len(h.logs.entries("pausing consumption")); n != 1 {
		t.Errorf("logged the pause %d times, want once", n)
	}
}

// TestProbeBackoffGrowsAcrossPauses has a pool that answers every probe but
// fails every job: each resume ends in a new pause, and the probe delays
// keep growing instead of starting over, until a job succeeds. The delays
// are recorded, not waited out.
func TestProbeBackoffGrowsAcrossPauses(t *testing.T) {
	srv := amqptest.NewServer(t)
	enqueue(t, srv, "a")
	var fail atomic.Bool
	fail.Store(true)
	var mu sync.Mutex
	var waits []time.Duration
	policy := backoff.Policy{Initial: time.Millisecond, Max: 64 * time.Millisecond, Factor: 2}
	h := startPrepared(t, srv, func(ctx context.Context, d amqp.Delivery, pub *broker.Publisher) error {
		if fail.Load() {
			d.Nack(false, true)
			return poolDownError(d)
		}
		return d.Ack(false)
	}, func(cfg *Config) {
		cfg.Concurrency = 1
		cfg.ProbeBackoff = policy
	}, func(c *Consumer) {
		c.probeWait = func(ctx context.Context, d time.Duration) bool {
			mu.Lock()
			waits = append(waits, d)
			mu.Unlock()
			return ctx.Err() == nil
		}
	})

	const pauses = 6
	amqptest.WaitFor(t, fmt.Sprintf("%d pauses", pauses), func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(waits) >= pauses
	})
	if step := h.c.probeStep.Load(); step < pauses {
		t.Errorf("probe step %d after %d pauses without a successful job, want at least %d", step, pauses, pauses)
	}
	mu.Lock()
	for i, wait := range waits[:pauses] {
		// Probe i, in the pause that followed probe i-1, waits Delay(i)
		// jittered.
		if least, most := policy.Delay(i)/2, policy.Delay(i); wait < least || wait > most {
			t.Errorf("probe %d waited %v, want %v to %v", i, wait, least, most)
		}
	}
	mu.Unlock()

	fail.Store(false)
	// The job may succeed while a pause begins; the probe that ends that
	// pause then counts once after the reset.
	amqptest.WaitFor(t, "the job acked, consuming, and the probe backoff started over", func() bool {
		return len(acked(srv)) == 1 && h.c.State() == Consuming && h.c.probeStep.Load() <= 1
	})
}

// TestOperatorPause pauses while jobs run: they finish, the rest go back to
// the queue, nothing else starts and the consumer holds nothing; pausing
// again changes nothing; resuming runs the rest, each once.
func TestOperatorPause(t *testing.T) {
	srv := amqptest.NewServer(t)
	ids := []string{"a", "b", "c", "d", "e", "f"}
	enqueue(t, srv, ids...)
	started := make(chan string, len(ids))
	releaseCh := make(chan struct{})
	release := sync.OnceFunc(func() { close(releaseCh) })
	h := start(t, srv, func(ctx context.Context, d amqp.Delivery, pub *broker.Publisher) error {
		started <- d.MessageId
		<-releaseCh
		return d.Ack(false)
	}, func(cfg *Config) {
		cfg.Concurrency = 2
		cfg.Prefetch = 4
	})
	t.Cleanup(release) // before the harness stops, should the test fail first

	amqptest.WaitFor(t, "two jobs run and four delivered", func() bool { return len(started) == 2 && queueState(t, srv).Unacked == 4 })
	if !h.c.Pause("database migration") {
		t.Fatal("Pause() = false on a consuming consumer, want true")
	}
	amqptest.WaitFor(t, "the subscription cancelled and the jobs not started requeued", func() bool {
		q := queueState(t, srv)
		return q.Consumers == 0 && q.Unacked == 2 && q.Ready == 4
	})
	paused, reason, since := h.c.OperatorPaused()
	if !paused || reason != "database migration" || time.Since(since) > time.Minute {
		t.Errorf("OperatorPaused() = %t, %q, %v; want true, the reason, now", paused, reason, since)
	}
	if got := h.c.State(); got != Paused {
		t.Errorf("state %s, want paused", got)
	}
	if n := h.c.Held(); n != 2 {
		t.Errorf("Held() = %d while two jobs run, want 2", n)
	}
	if h.c.Pause("another reason") {
		t.Error("Pause() = true on a paused consumer, want false")
	}
	if _, reason, again := h.c.OperatorPaused(); reason != "database migration" || !again.Equal(since) {
		t.Errorf("a second pause changed the reason to %q or the time to %v", reason, again)
	}

	release()
	amqptest.WaitFor(t, "the running jobs acked", func() bool { return len(acked(srv)) == 2 })
	amqptest.WaitFor(t, "nothing held", func() bool { q := queueState(t, srv); return q.Unacked == 0 && q.Ready == 4 && h.c.Held() == 0 })
	if n := len(started); n != 2 {
		t.Errorf("%d jobs started, want the 2 running when the pause came", n)
	}

	if !h.c.Resume() {
		t.Fatal("Resume() = false on a paused consumer, want true")
	}
	amqptest.WaitFor(t, "every job acked", func() bool { return len(acked(srv)) == len(ids) })
	if got := slices.Sorted(slices.Values(acked(srv))); !slices.Equal(got, ids) {
		t.Errorf("acked %v, want each job once", got)
	}
	if got := h.c.State(); got != Consuming {
		t.Errorf("state %s after the resume, want consuming", got)
	}
	if h.c.Resume() {
		t.Error("Resume() = true on a consuming consumer, want false")
	}
	if paused, _, _ := h.c.OperatorPaused(); paused {
		t.Error("OperatorPaused() still true after Resume")
	}
	for _, msg := range []string{"consumption paused by operator", "consumption resumed by operator"} {
		if e := h.logs.entries(msg); len(e) != 1 || e[0]["reason"] != "database migration" {
			t.Errorf("logged %q as %v, want once with the reason", msg, e)
		}
	}
}

// TestOperatorPauseAndPoolPause checks that the two pauses are independent:
// the pool returning does not end an operator's pause, and an operator's
// resume does not end the pool's.
func TestOperatorPauseAndPoolPause(t *testing.T) {
	t.Run("the pool returning during an operator's pause", func(t *testing.T) {
		srv := amqptest.NewServer(t)
		enqueue(t, srv, "a", "b")
		var down atomic.Bool
		running := make(chan struct{}, 1)
		gate := make(chan struct{})
		h := start(t, srv, func(ctx context.Context, d amqp.Delivery, pub *broker.Publisher) error {
			if d.MessageId == "a" && !d.Redelivered {
				running <- struct{}{}
				<-gate
			}
			if down.Load() {
				d.Nack(false, true)
				return poolDownError(d)
			}
			return d.Ack(false)
		}, func(cfg *Config) {
			cfg.Concurrency = 1
			cfg.Prefetch = 1
			cfg.Probe = func(context.Context) error {
				if down.Load() {
					return errors.New("ping: connection refused")
				}
				return nil
			}
		})

		<-running
		h.c.Pause("deploy")
		amqptest.WaitFor(t, "unsubscribed", func() bool { return queueState(t, srv).Consumers == 0 })
		// The running job finds the pool gone.
		down.Store(true)
		close(gate)
		amqptest.WaitFor(t, "the pool pause recorded", func() bool { return h.c.PauseReason() != nil })
		down.Store(false)
		amqptest.WaitFor(t, "the pool found again", func() bool { return h.c.PauseReason() == nil })
		if got, q := h.c.State(), queueState(t, srv); got != Paused || q.Consumers != 0 || q.Ready != 2 {
			t.Errorf("state %s, %d consumers, %d ready; want paused by the operator still, with both jobs in the queue", got, q.Consumers, q.Ready)
		}
		if n := len(h.logs.entries("consumption stays paused by operator")); n != 1 {
			t.Errorf("logged the pool's return %d times during the operator's pause, want once", n)
		}

		h.c.Resume()
		amqptest.WaitFor(t, "both jobs acked", func() bool { return len(acked(srv)) == 2 })
	})

	t.Run("an operator's resume while the pool is away", func(t *testing.T) {
		srv := amqptest.NewServer(t)
		enqueue(t, srv, "a")
		var down atomic.Bool
		down.Store(true)
		h := start(t, srv, func(ctx context.Context, d amqp.Delivery, pub *broker.Publisher) error {
			if down.Load() {
				d.Nack(false, true)
				return poolDownError(d)
			}
			return d.Ack(false)
		}, func(cfg *Config) {
			cfg.Concurrency = 1
			cfg.Probe = func(context.Context) error {
				if down.Load() {
					return errors.New("ping: connection refused")
				}
				return nil
			}
		})

		amqptest.WaitFor(t, "paused for the pool", func() bool { return h.c.State() == Paused && h.c.PauseReason() != nil })
		h.c.Pause("incident")
		h.c.Resume()
		amqptest.WaitFor(t, "the resume logged", func() bool { return len(h.logs.entries("still paused until the php-fpm pool answers")) == 1 })
		if got, q := h.c.State(), queueState(t, srv); got != Paused || h.c.PauseReason() == nil || q.Consumers != 0 {
			t.Errorf("state %s, pause reason %v, %d consumers; want paused for the pool", got, h.c.PauseReason(), q.Consumers)
		}

		down.Store(false)
		amqptest.WaitFor(t, "the job acked once the pool answers", func() bool { return len(acked(srv)) == 1 && h.c.State() == Consuming })
	})
}

// TestOperatorPauseSurvivesReconnect drops the connection of a paused
// consumer: the next session connects but does not consume.
func TestOperatorPauseSurvivesReconnect(t *testing.T) {
	srv := amqptest.NewServer(t)
	h := start(t, srv, ack, nil)
	amqptest.WaitFor(t, "consuming", func() bool { return h.c.State() == Consuming })
	h.c.Pause("maintenance")
	amqptest.WaitFor(t, "unsubscribed", func() bool { return h.c.State() == Paused && queueState(t, srv).Consumers == 0 })

	c, _, _ := connWith(srv, publishing)
	srv.Drop(c.Number)
	amqptest.WaitFor(t, "connected again", func() bool { return h.c.Reconnects() == 1 && h.c.State() == Paused })
	enqueue(t, srv, "kept")
	if q := queueState(t, srv); q.Consumers != 0 || q.Ready != 1 {
		t.Errorf("%d consumers, %d ready after the reconnection; want none and the job kept", q.Consumers, q.Ready)
	}
	if n := len(h.logs.entries("consumption stays paused by operator")); n != 1 {
		t.Errorf("logged the paused session %d times, want once", n)
	}

	h.c.Resume()
	amqptest.WaitFor(t, "the job acked after the resume", func() bool { return slices.Contains(acked(srv), "kept") })
}

// TestQuorumPauseRequeuesByCopy: on a quorum queue, which counts returns
// toward its delivery limit, the deliveries a pause gives back, started or
// not, go back as copies and are acked: none is nacked.
func TestQuorumPauseRequeuesByCopy(t *testing.T) {
	srv := amqptest.NewServer(t)
	enqueue(t, srv, "a", "b", "c")
	var down atomic.Bool
	down.Store(true)
	var mu sync.Mutex
	var ran []string
	h := start(t, srv, func(ctx context.Context, d amqp.Delivery, pub *broker.Publisher) error {
		if down.Load() {
			// As the dispatcher does on a quorum queue.
			broker.Requeue(ctx, pub, d, topology.Queue, true)
			return poolDownError(d)
		}
		mu.Lock()
		ran = append(ran, d.MessageId)
		mu.Unlock()
		return d.Ack(false)
	}, func(cfg *Config) {
		cfg.Topology.QueueType = broker.QueueQuorum
		cfg.Concurrency = 1
		cfg.Prefetch = 3
		cfg.Probe = func(context.Context) error {
			if down.Load() {
				return errors.New("ping: connection refused")
			}
			return nil
		}
	})
	amqptest.WaitFor(t, "paused with every job back in the queue", func() bool {
		q := queueState(t, srv)
		return h.c.State() == Paused && q.Consumers == 0 && q.Ready == 3 && q.Unacked == 0
	})
	down.Store(false)
	amqptest.WaitFor(t, "the three jobs run after the resume", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ran) == 3
	})
	if nacked := settled(srv, "nack", true); len(nacked) != 0 {
		t.Errorf("nacked %v, want none: copies instead", nacked)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(slices.Sorted(slices.Values(ran)), []string{"a", "b", "c"}) {
		t.Errorf("ran %v, want a, b and c once each", ran)
	}
}
