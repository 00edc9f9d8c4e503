package broker

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
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
// queue with its dead-letter target and x-max-priority only for a classic
// queue with MaxPriority set, a quorum dead-letter queue with its delivery
// limit lifted, and delay queues that send expired jobs back to the job
// queue.
func TestDeclare(t *testing.T) {
	dlx := amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "jobs.dead"}
	for _, tt := range []struct {
		queueType         string
		maxPriority       int
		jobArgs, deadArgs amqp.Table
	}{
		{QueueClassic, 0, dlx, amqp.Table{}},
		{QueueClassic, 10, with(dlx, amqp.Table{"x-max-priority": int64(10)}), amqp.Table{}},
		{QueueQuorum, 10, with(dlx, amqp.Table{"x-queue-type": QueueQuorum}), amqp.Table{"x-queue-type": QueueQuorum, "x-delivery-limit": int64(DeadDeliveryLimit)}},
	} {
		srv := amqptest.NewServer(t)
		conn, err := Dial(context.Background(), srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		top := Topology{Queue: "jobs", QueueType: tt.queueType, DeadQueue: "jobs.dead", RetryDelays: []time.Duration{time.Second}, DelayMax: 5 * time.Second, MaxPriority: tt.maxPriority}
		if err := top.Declare(conn); err != nil {
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
		if !sameArgs(args["jobs"], tt.jobArgs) {
			t.Errorf("%s, %d: job queue arguments %v, want %v", tt.queueType, tt.maxPriority, args["jobs"], tt.jobArgs)
		}
		if !sameArgs(args["jobs.dead"], tt.deadArgs) {
			t.Errorf("%s: dead-letter queue arguments %v, want %v", tt.queueType, args["jobs.dead"], tt.deadArgs)
		}
		if a := args["jobs.delay.4s"]; a["x-message-ttl"] != int64(4000) || a["x-dead-letter-routing-key"] != "jobs" || a["x-max-priority"] != nil {
			t.Errorf("delay queue arguments %v", a)
		}
	}
}

// TestDeclareExisting checks what Declare does with job and dead-letter
// queues that exist with other arguments: those declared without the
// dead-letter arguments (by older versions), or with other ones, are used
// as they are; any other difference is an error naming it, as RabbitMQ's
// refusal does.
func TestDeclareExisting(t *testing.T) {
	quorum := amqp.Table{"x-queue-type": QueueQuorum}
	dlx := amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "jobs.dead"}
	for _, tt := range []struct {
		name           string
		queueType      string
		job, dead      amqp.Table // the existing queues' arguments
		wantErr        string     // "" for success
		wantJob        amqp.Table // the job queue's arguments afterwards
		wantJobDeclare int        // declarations of the job queue, passive ones included
	}{
		{"declared by an older version", QueueClassic, amqp.Table{}, amqp.Table{}, "", amqp.Table{}, 2},
		{"quorum, declared by an older version", QueueQuorum, quorum, quorum, "", quorum, 2},
		{"as this version declares them", QueueQuorum, with(quorum, dlx), with(quorum, amqp.Table{"x-delivery-limit": int64(DeadDeliveryLimit)}), "", with(quorum, dlx), 1},
		{"another dead-letter target", QueueQuorum, with(quorum, amqp.Table{"x-dead-letter-exchange": "graveyard"}), quorum, "", with(quorum, amqp.Table{"x-dead-letter-exchange": "graveyard"}), 3},
		{"another delivery limit on the dead-letter queue", QueueQuorum, quorum, with(quorum, amqp.Table{"x-delivery-limit": int64(5)}), "", quorum, 2},
		{"another type", QueueQuorum, amqp.Table{}, amqp.Table{}, "inequivalent arg 'x-queue-type'", amqp.Table{}, 2},
		{"another type, with our dead-letter target", QueueQuorum, dlx, amqp.Table{}, "inequivalent arg 'x-queue-type'", dlx, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := amqptest.NewServer(t)
			srv.CheckArgs = true
			conn, err := Dial(context.Background(), srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ch, err := conn.Channel()
			if err != nil {
				t.Fatal(err)
			}
			for name, args := range map[string]amqp.Table{"jobs": tt.job, "jobs.dead": tt.dead} {
				if _, err := declare(ch, name, args); err != nil {
					t.Fatal(err)
				}
			}
			ch.Close()
			top := Topology{Queue: "jobs", QueueType: tt.queueType, DeadQueue: "jobs.dead", DelayMax: time.Second}
			err = top.Declare(conn)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Declare: %v", err)
			case tt.wantErr != "" && (err == nil || !errors.Is(err, ErrTopology) || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Declare: %v, want ErrTopology naming %s", err, tt.wantErr)
			}
			if q, ok := srv.Queue("jobs"); !ok || !sameArgs(q.Args, tt.wantJob) {
				t.Errorf("job queue arguments %v, want %v", q.Args, tt.wantJob)
			}
			n := 0
			for _, d := range srv.Declared()[2:] {
				if d.Queue == "jobs" {
					n++
				}
			}
			if n != tt.wantJobDeclare {
				t.Errorf("%d declarations of the job queue, want %d", n, tt.wantJobDeclare)
			}
		})
	}
}

// with returns a copy of a with b's entries added.
func with(a, b amqp.Table) amqp.Table {
	c := maps.Clone(a)
	maps.Copy(c, b)
	return c
}

func sameArgs(a, b amqp.Table) bool {
	return maps.EqualFunc(a, b, func(x, y any) bool { return x == y })
}
