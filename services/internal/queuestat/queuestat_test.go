package queuestat

import (
	"context"
	"slices"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/amqptest"
	"github.com/fpmq/fpmq/services/internal/backoff"
	"github.com/fpmq/fpmq/services/internal/broker"
)

func TestRead(t *testing.T) {
	srv := amqptest.NewServer(t)
	for _, q := range []string{"jobs", "jobs", "jobs.dead"} {
		if err := srv.Enqueue(q, amqp.Publishing{Body: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	p := &Poller{
		Dial:   func(ctx context.Context) (*amqp.Connection, error) { return broker.Dial(ctx, srv.URL, nil) },
		Queues: Queues(broker.Topology{Queue: "jobs", DeadQueue: "jobs.dead", RetryDelays: []time.Duration{time.Second}}),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stats, at, err := p.Read(ctx)
	if err != nil || time.Since(at) > time.Minute {
		t.Fatalf("Read = %v at %v", err, at)
	}
	want := []Stat{
		{Queue: Queue{"jobs", RoleJob}, Ready: 2},
		{Queue: Queue{"jobs.retry.1s", RoleRetry}, Missing: true},
		{Queue: Queue{"jobs.dead", RoleDead}, Ready: 1},
	}
	if len(stats) != len(want) {
		t.Fatalf("Read = %+v, want %+v", stats, want)
	}
	for i := range want {
		if stats[i] != want[i] {
			t.Errorf("queue %d: %+v, want %+v", i, stats[i], want[i])
		}
	}
	amqptest.WaitFor(t, "Read's connection closed", func() bool { return len(srv.Conns()) == 0 })
}

func TestQueuesHaveDelayRoles(t *testing.T) {
	qs := Queues(broker.Topology{Queue: "jobs", DeadQueue: "jobs.dead", RetryDelays: []time.Duration{time.Second}, DelayMax: 3 * time.Second})
	want := []Queue{{"jobs", RoleJob}, {"jobs.retry.1s", RoleRetry}, {"jobs.delay.1s", RoleDelay}, {"jobs.delay.2s", RoleDelay}, {"jobs.dead", RoleDead}}
	if !slices.Equal(qs, want) {
		t.Errorf("Queues = %v, want %v", qs, want)
	}
}

// Attempts whose delays reached the policy's cap share one retry queue,
// listed once: a name twice would make two series of one metric, which
// Prometheus refuses (the daemon's /metrics answered 500 with
// MAX_ATTEMPTS=20).
func TestQueuesListASharedRetryQueueOnce(t *testing.T) {
	delays := broker.RetryDelays(20, backoff.Policy{Initial: time.Second, Factor: 2, Max: time.Minute})
	qs := Queues(broker.Topology{Queue: "jobs", DeadQueue: "jobs.dead", RetryDelays: delays})
	var retry []string
	for _, q := range qs {
		if q.Role == RoleRetry {
			retry = append(retry, q.Name)
		}
	}
	want := []string{"jobs.retry.1s", "jobs.retry.2s", "jobs.retry.4s", "jobs.retry.8s", "jobs.retry.16s", "jobs.retry.32s", "jobs.retry.1m0s"}
	if !slices.Equal(retry, want) {
		t.Errorf("retry queues = %v, want %v", retry, want)
	}
}
