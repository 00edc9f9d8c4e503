package broker

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/amqptest"
	"github.com/fpmq/fpmq/services/internal/backoff"
)

func TestRetryDelays(t *testing.T) {
	tests := []struct {
		attempts int
		initial  time.Duration
		factor   float64
		max      time.Duration
		want     []time.Duration
	}{
		{5, time.Second, 2, time.Minute, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}},
		{4, 10 * time.Second, 3, 60 * time.Second, []time.Duration{10 * time.Second, 30 * time.Second, 60 * time.Second}},
		{3, time.Second, 1, time.Minute, []time.Duration{time.Second, time.Second}},
		{1, time.Second, 2, time.Minute, nil},
		{0, time.Second, 2, time.Minute, nil},
	}
	for _, tc := range tests {
		p := backoff.Policy{Initial: tc.initial, Max: tc.max, Factor: tc.factor}
		if got := RetryDelays(tc.attempts, p); !slices.Equal(got, tc.want) {
			t.Errorf("RetryDelays(%d, %s, %g, %s) = %v, want %v", tc.attempts, tc.initial, tc.factor, tc.max, got, tc.want)
		}
	}
}

func TestRetryQueueNames(t *testing.T) {
	top := Topology{Queue: "commands", RetryDelays: []time.Duration{time.Second, 1500 * time.Millisecond, 2 * time.Minute}}
	var names []string
	for i := range top.RetryDelays {
		names = append(names, top.RetryQueue(i))
	}
	want := []string{"commands.retry.1s", "commands.retry.1.5s", "commands.retry.2m0s"}
	if !slices.Equal(names, want) {
		t.Errorf("retry queues %v, want %v", names, want)
	}
}

func TestCheckQueueType(t *testing.T) {
	for _, ok := range []string{QueueClassic, QueueQuorum} {
		if err := CheckQueueType(ok); err != nil {
			t.Errorf("CheckQueueType(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "stream", "Quorum"} {
		if err := CheckQueueType(bad); err == nil {
			t.Errorf("CheckQueueType(%q) accepted", bad)
		}
	}
}

func TestDelayBuckets(t *testing.T) {
	got := DelayBuckets(168 * time.Hour)
	if len(got) != 20 || got[0] != time.Second || got[19] != 524288*time.Second {
		t.Errorf("DelayBuckets(168h) = %v, want 1s to 524288s, 20 of them", got)
	}
	if got := DelayBuckets(999 * time.Millisecond); got != nil {
		t.Errorf("DelayBuckets(999ms) = %v, want none", got)
	}
	if got := DelayBuckets(4 * time.Second); !slices.Equal(got, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}) {
		t.Errorf("DelayBuckets(4s) = %v", got)
	}
}

func TestDelayBucket(t *testing.T) {
	tests := []struct {
		d, longest time.Duration
		want       time.Duration
		ok         bool
	}{
		{999 * time.Millisecond, time.Hour, 0, false},
		{time.Second, time.Hour, time.Second, true},
		{1999 * time.Millisecond, time.Hour, time.Second, true},
		{2 * time.Second, time.Hour, 2 * time.Second, true},
		{30 * time.Second, time.Hour, 16 * time.Second, true},
		{5 * time.Hour, time.Hour, 2048 * time.Second, true},
		{5 * time.Second, 500 * time.Millisecond, 0, false},
	}
	for _, tt := range tests {
		got, ok := DelayBucket(tt.d, tt.longest)
		if got != tt.want || ok != tt.ok {
			t.Errorf("DelayBucket(%s, %s) = %s, %v; want %s, %v", tt.d, tt.longest, got, ok, tt.want, tt.ok)
		}
	}
	if name := DelayQueue("commands", 64*time.Second); name != "commands.delay.1m4s" {
		t.Errorf("DelayQueue = %q", name)
	}
}

func TestDelayArgs(t *testing.T) {
	args := delayArgs(QueueQuorum, "commands", 4*time.Second)
	if args["x-message-ttl"] != int64(4000) || args["x-dead-letter-exchange"] != "" ||
		args["x-dead-letter-routing-key"] != "commands" || args["x-queue-type"] != QueueQuorum || len(args) != 4 {
		t.Errorf("delayArgs = %v", args)
	}
}

// TestDeclare checks the queues and arguments Declare asks for: the job
// queue with x-max-priority only for a classic queue with MaxPriority set,
// and delay queues that send expired jobs back to the job queue.
func TestDeclare(t *testing.T) {
	for _, tt := range []struct {
		queueType   string
		maxPriority int
		jobArgs     amqp.Table
	}{
		{QueueClassic, 0, amqp.Table{}},
		{QueueClassic, 10, amqp.Table{"x-max-priority": int64(10)}},
		{QueueQuorum, 10, amqp.Table{"x-queue-type": QueueQuorum}},
	} {
		srv := amqptest.NewServer(t)
		conn, err := Dial(context.Background(), srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		top := Topology{Queue: "jobs", QueueType: tt.queueType, DeadQueue: "jobs.dead", RetryDelays: []time.Duration{time.Second}, DelayMax: 5 * time.Second, MaxPriority: tt.maxPriority}
		if err := top.Declare(ch); err != nil {
			t.Fatalf("%s, %d: Declare: %v", tt.queueType, tt.maxPriority, err)
		}
		conn.Close()
		args := map[string]amqp.Table{}
		var names []string
		for _, d := range srv.Declared() {
			names = append(names, d.Queue)
			args[d.Queue] = d.Args
		}
		want := []string{"jobs", "jobs.dead", "jobs.retry.1s", "jobs.delay.1s", "jobs.delay.2s", "jobs.delay.4s"}
		if !slices.Equal(names, want) {
			t.Fatalf("declared %v, want %v", names, want)
		}
		if !maps.EqualFunc(args["jobs"], tt.jobArgs, func(a, b any) bool { return a == b }) {
			t.Errorf("%s, %d: job queue arguments %v, want %v", tt.queueType, tt.maxPriority, args["jobs"], tt.jobArgs)
		}
		if a := args["jobs.delay.4s"]; a["x-message-ttl"] != int64(4000) || a["x-dead-letter-routing-key"] != "jobs" || a["x-max-priority"] != nil {
			t.Errorf("delay queue arguments %v", a)
		}
	}
}
