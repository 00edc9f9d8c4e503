//go:build integration

package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/integration/stack"
)

// TestBrokerLimits checks what RabbitMQ may do to a job besides delivering
// it: drop it past a quorum queue's delivery limit, and block publishers
// under a resource alarm. No job vanishes and none exists twice.
func TestBrokerLimits(t *testing.T) {
	s := newStack(t, stackOptions{
		noDaemon: true,
		phpBinds: []string{filepath.Join(repoRoot(t), "integration", "testdata", "php") + ":" + testScripts + ":ro"},
	})
	ctx := context.Background()

	// The case: a policy that replaces fpmq's on the queue and
	// allows one return; php-fpm killed twice under a running job.
	t.Run("the daemon's own requeues do not spend a quorum queue's delivery limit", func(t *testing.T) {
		const queue = "limited"
		if out, err := s.Rabbitmqctl(ctx, "set_policy", "-p", stack.VHost, "--apply-to", "queues", "--priority", "10", "limit-one", "^limited$", `{"delivery-limit":1}`); err != nil {
			t.Fatalf("set policy: %v\n%s", err, out)
		}
		s.routeDaemon(t, queue, map[string]string{"SCRIPT_FILENAME": misbehave, "AMQP_QUEUE_TYPE": "quorum"})
		s.publishMessages(t, queue, stack.Job("limit-1", []byte(`{"do":"sleep","seconds":"4"}`)))
		for run := 1; run <= 2; run++ {
			eventually(t, settleTimeout, fmt.Sprintf("run %d started", run), func() bool { return s.misbehaveRuns(t)["limit-1"] == run })
			s.kill(t, s.PHP)
			if err := s.PHP.Start(ctx); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, 2*settleTimeout, "the job done and its queue empty", func() bool {
			q := s.queue(t, queue)
			return s.misbehaveRuns(t)["limit-1"] == 3 && q.Ready == 0 && q.Unacked == 0
		})
		time.Sleep(time.Second) // a run after the queue emptied would show now
		if n := s.misbehaveRuns(t)["limit-1"]; n != 3 {
			t.Errorf("the job ran %d times, want 3: two cut short by the kills, one to the end", n)
		}
		if n := s.queue(t, queue+".dead").Ready; n != 0 {
			t.Errorf("%d dead letters, want none", n)
		}
	})

	// fpmq's policy gives the job queue a dead-letter target: a job the
	// broker drops is kept, and "dead list" says why. RabbitMQ 3 sets no
	// delivery limit and applies one policy per queue: the test puts the
	// limit into fpmq's own policy, whose definition it checks first.
	t.Run("a job the broker drops becomes a dead letter with the broker's reason", func(t *testing.T) {
		out, err := s.Rabbitmqctl(ctx, "-q", "list_policies", "-p", stack.VHost, "--no-table-headers")
		if err != nil {
			t.Fatalf("list policies: %v\n%s", err, out)
		}
		// Columns: vhost, name, pattern, apply-to, definition, priority.
		const want = `{"dead-letter-exchange":"","dead-letter-routing-key":"commands.dead"}`
		var got string
		for line := range strings.Lines(out) {
			if f := strings.Split(strings.TrimSpace(line), "\t"); len(f) == 6 && f[1] == "fpmq-commands" {
				got = f[4]
			}
		}
		if got != want {
			t.Fatalf("policy fpmq-commands: %q, want %s; policies:\n%s", got, want, out)
		}
		ch := s.adminChannel(t)
		// As the daemon declares them, which is not running here.
		for _, q := range []string{stack.JobQueue, stack.DeadQueue} {
			if _, err := ch.QueueDeclare(q, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
				t.Fatal(err)
			}
		}
		limited := strings.TrimSuffix(want, "}") + `,"delivery-limit":1}`
		if out, err := s.Rabbitmqctl(ctx, "set_policy", "-p", stack.VHost, "--apply-to", "queues", "--priority", "1", "fpmq-commands", "^commands$", limited); err != nil {
			t.Fatalf("set policy: %v\n%s", err, out)
		}
		s.publishMessages(t, stack.JobQueue, stack.Job("dropped-1", []byte(`{"number":1}`)))
		// basic.reject with requeue counts a delivery on every version
		// (basic.nack does not from RabbitMQ 4.3 on).
		for i := 0; i < 2; i++ {
			var d amqp.Delivery
			eventually(t, settleTimeout, "the job delivered", func() bool {
				var ok bool
				var err error
				d, ok, err = ch.Get(stack.JobQueue, false)
				if err != nil {
					t.Fatal(err)
				}
				return ok
			})
			if err := d.Reject(true); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, settleTimeout, "the dropped job in commands.dead", func() bool { return s.queue(t, stack.DeadQueue).Ready == 1 })
		if out, err := s.Rabbitmqctl(ctx, "set_policy", "-p", stack.VHost, "--apply-to", "queues", "--priority", "1", "fpmq-commands", "^commands$", want); err != nil {
			t.Fatalf("restore policy: %v\n%s", err, out)
		}
		list := s.deadList(t)
		if len(list) != 1 || list[0].ID != "dropped-1" || list[0].Reason != "broker: delivery_limit" || list[0].Queue != stack.JobQueue {
			t.Errorf("dead list: %+v, want dropped-1 with reason %q from %s", list, "broker: delivery_limit", stack.JobQueue)
		}
	})

	// A channel that closes under a running job (a consumer acknowledgement
	// timeout does that, as does a lost connection) takes the job's ack
	// with it; the broker delivers the job again, and the daemon acks that
	// redelivery without running the job a second time.
	t.Run("an ack lost with its channel does not run the job again", func(t *testing.T) {
		d := s.startDaemon(t, map[string]string{"SCRIPT_FILENAME": misbehave, "AMQP_QUEUE_TYPE": "quorum"})
		s.publishMessages(t, stack.JobQueue, stack.Job("lost-ack-1", []byte(`{"do":"sleep","seconds":"4"}`)))
		eventually(t, settleTimeout, "the job running", func() bool { return s.misbehaveRuns(t)["lost-ack-1"] == 1 })
		rows, err := s.Table(ctx, "list_connections", "user", "pid")
		if err != nil {
			t.Fatal(err)
		}
		closed := 0
		for _, r := range rows {
			if r[0] == stack.DaemonUser {
				if out, err := s.Rabbitmqctl(ctx, "close_connection", r[1], "closed by the test"); err != nil {
					t.Fatalf("close connection: %v\n%s", err, out)
				}
				closed++
			}
		}
		if closed == 0 {
			t.Fatalf("no connection of %s among %v", stack.DaemonUser, rows)
		}
		eventually(t, 2*settleTimeout, "the redelivery acked without a run", func() bool {
			q := s.queue(t, stack.JobQueue)
			return q.Ready == 0 && q.Unacked == 0 && scrape(t, d)[series("fpmq_jobs_redelivered_done_total", stack.JobQueue)] == 1
		})
		if n := s.misbehaveRuns(t)["lost-ack-1"]; n != 1 {
			t.Errorf("the job ran %d times, want once", n)
		}
	})

	// Under a memory alarm RabbitMQ blocks every connection that publishes.
	// Jobs that succeed go on (their acks do not wait for the copies of
	// those that fail); a failed attempt's copy waits, is published once the
	// alarm clears, and is never published twice.
	t.Run("a resource alarm stalls no ack and duplicates no job", func(t *testing.T) {
		const queue = "alarmed"
		const attempts = 3
		d := s.routeDaemon(t, queue, map[string]string{"SCRIPT_FILENAME": misbehave, "MAX_ATTEMPTS": fmt.Sprint(attempts), "CONCURRENCY": "10"})
		var msgs []amqp.Publishing
		for i := range 5 {
			msgs = append(msgs, stack.Job(fmt.Sprintf("alarm-fail-%d", i), []byte(`{"do":"fail"}`)))
		}
		for i := range 30 {
			msgs = append(msgs, stack.Job(fmt.Sprintf("alarm-ok-%d", i), []byte(`{"do":"sleep","seconds":"0.2"}`)))
		}
		s.publishMessages(t, queue, msgs...)
		if out, err := s.Rabbitmqctl(ctx, "set_vm_memory_high_watermark", "0"); err != nil {
			t.Fatalf("raise a memory alarm: %v\n%s", err, out)
		}
		alarmOn := true
		clear := func() {
			if alarmOn {
				if out, err := s.Rabbitmqctl(ctx, "set_vm_memory_high_watermark", "0.4"); err != nil {
					t.Errorf("clear the memory alarm: %v\n%s", err, out)
				}
				alarmOn = false
			}
		}
		defer clear()
		eventually(t, settleTimeout, "the daemon sees its publishing connection blocked", func() bool {
			return scrape(t, d)[series("fpmq_broker_blocked", queue)] == 1
		})
		eventually(t, settleTimeout, "every job that succeeds done during the alarm", func() bool {
			runs := s.misbehaveRuns(t)
			for i := range 30 {
				if runs[fmt.Sprintf("alarm-ok-%d", i)] != 1 {
					return false
				}
			}
			return s.queue(t, queue).Unacked == 5 // the failed ones, waiting for their copies
		})
		// Longer than a publish's confirm used to be waited for (30 s),
		// after which the copy was sent again and each attempt ran twice.
		time.Sleep(35 * time.Second)
		clear()
		awaitDeadN := func() bool { return s.queue(t, queue+".dead").Ready == 5 }
		eventually(t, 2*settleTimeout, "the five failing jobs dead after their attempts", awaitDeadN)
		eventually(t, settleTimeout, "nothing left", func() bool {
			q := s.queue(t, queue)
			return q.Ready == 0 && q.Unacked == 0
		})
		runs := s.misbehaveRuns(t)
		var wrong []string
		for id, n := range runs {
			want := 1
			if strings.HasPrefix(id, "alarm-fail-") {
				want = attempts
			} else if !strings.HasPrefix(id, "alarm-ok-") {
				continue
			}
			if n != want {
				wrong = append(wrong, fmt.Sprintf("%s ran %d times, want %d", id, n, want))
			}
		}
		if len(wrong) > 0 {
			t.Errorf("runs: %s", strings.Join(wrong, "; "))
		}
		for _, name := range []string{queue + ".dead"} {
			if q := s.queue(t, name); q.Ready != 5 {
				t.Errorf("%s holds %d, want 5: one per failing job", name, q.Ready)
			}
		}
	})
}
