package consume

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/amqptest"
	"github.com/fpmq/fpmq/services/internal/broker"
)

func TestConcurrencyBound(t *testing.T) {
	srv := amqptest.NewServer(t)
	var ids []string
	for i := range 10 {
		ids = append(ids, fmt.Sprint("job-", i))
	}
	enqueue(t, srv, ids...)
	var running, peak atomic.Int32
	releaseCh := make(chan struct{})
	release := sync.OnceFunc(func() { close(releaseCh) })
	h := start(t, srv, func(ctx context.Context, d amqp.Delivery, pub *broker.Publisher) error {
		n := running.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-releaseCh
		running.Add(-1)
		return d.Ack(false)
	}, func(cfg *Config) { cfg.Concurrency = 3 })
	t.Cleanup(release) // before the harness stops, should the test fail first

	amqptest.WaitFor(t, "3 jobs run", func() bool { return running.Load() == 3 })
	if q := queueState(t, srv); q.Unacked != 3 || q.Ready != 7 {
		t.Errorf("queue holds %d unacked and %d ready, want 3 (the prefetch, defaulting to the concurrency) and 7", q.Unacked, q.Ready)
	}
	if _, ch, ok := connWith(srv, consuming); !ok || ch.Prefetch != 3 {
		t.Errorf("consuming channel %+v, want prefetch 3", ch)
	}
	release()
	amqptest.WaitFor(t, "every job acked", func() bool { return len(acked(srv)) == len(ids) })
	if p := peak.Load(); p != 3 {
		t.Errorf("%d jobs ran at once, want at most and at least 3", p)
	}
	if got := h.c.State(); got != Consuming {
		t.Errorf("state %s, want consuming", got)
	}
}

func TestDrainOnShutdown(t *testing.T) {
	srv := amqptest.NewServer(t)
	enqueue(t, srv, "first", "second", "third")
	started := make(chan string, 3)
	releaseCh := make(chan struct{})
	release := sync.OnceFunc(func() { close(releaseCh) })
	h := start(t, srv, func(ctx context.Context, d amqp.Delivery, pub *broker.Publisher) error {
		started <- d.MessageId
		if d.MessageId == "first" {
			<-releaseCh
		}
		return d.Ack(false)
	}, func(cfg *Config) {
		cfg.Concurrency = 1
		cfg.Prefetch = 3
	})
	t.Cleanup(release) // before the harness stops, should the test fail first

	select {
	case id := <-started:
		if id != "first" {
			t.Fatalf("job %s ran first, want first", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no job started")
	}
	amqptest.WaitFor(t, "all three delivered", func() bool { return queueState(t, srv).Unacked == 3 })

	h.cancel()
	// The broker may deliver a requeued job again before it gets the
	// cancel; the consumer requeues it again.
	amqptest.WaitFor(t, "the two jobs not started requeued and the subscription cancelled", func() bool {
		q := queueState(t, srv)
		return q.Ready == 2 && q.Unacked == 1 && q.Consumers == 0
	})
	if n := len(settled(srv, "nack", true)); n < 2 {
		t.Errorf("%d deliveries requeued, want at least 2", n)
	}
	select {
	case <-h.done:
		t.Fatal("Run returned while a job was running")
	default:
	}

	release()
	if err, stopErr := h.stop(); err != nil || stopErr != nil {
		t.Fatalf("Run returned %v (%v), want nil", err, stopErr)
	}
	if got := acked(srv); !slices.Equal(got, []string{"first"}) {
		t.Errorf("acked %v, want only the job that was running", got)
	}
	if len(started) != 0 {
		t.Errorf("job %s started after the shutdown began", <-started)
	}
	if got := h.c.State(); got != Stopped {
		t.Errorf("state %s, want stopped", got)
	}
	amqptest.WaitFor(t, "both connections closed", func() bool { return len(srv.Conns()) == 0 })
	if len(h.logs.entries("in-flight jobs done")) != 1 {
		t.Error("the drain was not logged")
	}
}

func TestShutdownTimeoutCancelsJobs(t *testing.T) {
	srv := amqptest.NewServer(t)
	enqueue(t, srv, "slow")
	running := make(chan struct{})
	jobErr := make(chan error, 1)
	const timeout = 20 * time.Millisecond
	h := start(t, srv, func(ctx context.Context, d amqp.Delivery, pub *broker.Publisher) error {
		close(running)
		<-ctx.Done()
		jobErr <- ctx.Err()
		return d.Nack(false, true)
	}, func(cfg *Config) { cfg.ShutdownTimeout = timeout })

	<-running
	began := time.Now()
	if err, stopErr := h.stop(); err != nil || stopErr != nil {
		t.Fatalf("Run returned %v (%v), want nil", err, stopErr)
	}
	if elapsed := time.Since(began); elapsed < timeout {
		t.Errorf("Run returned after %v, before the shutdown timeout %v", elapsed, timeout)
	}
	if err := <-jobErr; !errors.Is(err, context.Canceled) {
		t.Errorf("job context ended with %v, want cancelled", err)
	}
	if q := queueState(t, srv); q.Ready != 1 {
		t.Errorf("%d jobs back in the queue, want the one cut off", q.Ready)
	}
	if len(h.logs.entries("shutdown timeout")) != 1 {
		t.Error("the timeout was not logged")
	}
}
