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

// siteLimits is the catch-all policy: any queue, a length limit,
// a higher priority than fpmq's own (1), as hosted brokers add.
const siteLimits = `{"max-length":1000000}`

// TestBrokerPolicies adds a catch-all policy of higher priority than
// fpmq's on a running stack with quorum queues, which RabbitMQ then
// applies instead of fpmq's (one policy per queue). The job and dead-letter
// queues of commands were declared as older versions of fpmq did, without
// the dead-letter arguments, so they depend on fpmq's policies: the daemon
// says what the catch-all undoes, in its log and in fpmq_queue_policy_ok;
// jobs still reach the dead-letter queue; "daemon dead list" run 25 times
// loses nothing; and once the operator raises fpmq's policies above the
// catch-all, the gauge recovers. The reports route's queues are declared
// by this version: there a job the broker drops lands in the dead-letter
// queue whatever the policy.
func TestBrokerPolicies(t *testing.T) {
	s := newStack(t, stackOptions{
		noDaemon: true,
		phpBinds: []string{filepath.Join(repoRoot(t), "integration", "testdata", "php") + ":" + testScripts + ":ro"},
	})
	ctx := context.Background()
	major := s.rabbitMajor(t)

	ch := s.adminChannel(t)
	for _, q := range []string{jobQueue, deadQueue} {
		if _, err := ch.QueueDeclare(q, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil { // durable, not auto-delete, not exclusive, wait
			t.Fatal(err)
		}
	}
	// As the daemon user, whose management tag lets it read the API.
	d := s.startDaemon(t, map[string]string{"SCRIPT_FILENAME": misbehave, "AMQP_QUEUE_TYPE": "quorum", "MAX_ATTEMPTS": "2"})
	jobOK := series("fpmq_queue_policy_ok", jobQueue, "role", "job")
	deadOK := `fpmq_queue_policy_ok{queue="commands.dead",role="dead"}`
	policyOK := func(name string, want float64) func() bool {
		return func() bool {
			v, ok := scrape(t, d)[name]
			return ok && v == want
		}
	}

	t.Run("fpmq's own policies: the daemon uses the queues as they are, and says all is well", func(t *testing.T) {
		eventually(t, settleTimeout, "both gauges 1", func() bool { return policyOK(jobOK, 1)() && policyOK(deadOK, 1)() })
		if v := scrape(t, d)[series("fpmq_queue_policy_checked", jobQueue)]; v != 1 {
			t.Errorf("fpmq_queue_policy_checked = %v, want 1", v)
		}
		rows, err := s.Table(ctx, "list_queues", "name", "arguments")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if (r[0] == jobQueue || r[0] == deadQueue) && strings.Contains(r[1], "x-dead-letter") {
				t.Errorf("%s was declared again with other arguments: %s", r[0], r[1])
			}
		}
	})

	setPolicy(t, s, "site-limits", ".*", siteLimits, 10)

	t.Run("a catch-all policy: the daemon logs what it undoes, once, and the gauge says so", func(t *testing.T) {
		eventually(t, settleTimeout, "both gauges 0", func() bool { return policyOK(jobOK, 0)() && policyOK(deadOK, 0)() })
		time.Sleep(3 * time.Second) // three more checks, which must not log again
		logs := containerLogs(t, d)
		for _, tc := range []struct{ queue, says string }{
			{jobQueue, "dead-letter-exchange: no dead-letter target"},
			{deadQueue, "max-length: past 1000000 dead letters"},
		} {
			var lines []string
			for line := range strings.Lines(logs) {
				if strings.Contains(line, "policies undo") && strings.Contains(line, `"queue":"`+tc.queue+`"`) {
					lines = append(lines, line)
				}
			}
			if len(lines) != 1 {
				t.Errorf("%d error lines for %s, want 1:\n%s", len(lines), tc.queue, strings.Join(lines, ""))
				continue
			}
			for _, want := range []string{`"policy":"site-limits"`, tc.says, "POLICY_PRIORITY"} {
				if !strings.Contains(lines[0], want) {
					t.Errorf("the line for %s lacks %s:\n%s", tc.queue, want, lines[0])
				}
			}
			if major >= 4 && tc.queue == deadQueue && !strings.Contains(lines[0], "delivered 20 times") {
				t.Errorf("RabbitMQ %d: the line for %s does not name the default delivery limit:\n%s", major, tc.queue, lines[0])
			}
		}
	})

	t.Run("a job whose attempts run out is still dead-lettered", func(t *testing.T) {
		s.publishMessages(t, jobQueue, stack.Job("exhausted-1", []byte(`{"do":"fail"}`)))
		eventually(t, settleTimeout, "the job in commands.dead", func() bool { return s.queue(t, deadQueue).Ready == 1 })
	})

	t.Run("dead list, 25 times, loses nothing", func(t *testing.T) {
		for i := 1; i <= 25; i++ {
			code, out, errOut := s.dead(t, "list", "--json")
			switch {
			case major >= 4:
				// The dead-letter queue has RabbitMQ 4's delivery limit, 20.
				if code != 3 || !strings.Contains(errOut, "delivery limit of 20") || strings.Contains(out, "exhausted-1") {
					t.Fatalf("run %d: exit %d, stdout %q, stderr %q; want 3, nothing read, the limit named", i, code, out, errOut)
				}
			default:
				// RabbitMQ 3 sets no delivery limit: reading is safe.
				if code != 0 || !strings.Contains(out, `"id":"exhausted-1"`) {
					t.Fatalf("run %d: exit %d, stdout %q, stderr %q; want the job listed", i, code, out, errOut)
				}
			}
		}
		if q := s.queue(t, deadQueue); q.Ready != 1 || q.Unacked != 0 {
			t.Errorf("commands.dead: %d ready, %d unacked after 25 runs; want the job, ready", q.Ready, q.Unacked)
		}
	})

	t.Run("on queues declared by this version, a job the broker drops lands in the dead-letter queue", func(t *testing.T) {
		// The reports daemon declares its queues, with the arguments, and
		// stops: no consumer takes what follows.
		t.Run("declare", func(t *testing.T) {
			s.startReportsDaemon(t, map[string]string{"AMQP_QUEUE_TYPE": "quorum"})
		})
		// Another kind of policy: a length limit that drops the oldest,
		// and no dead-letter target.
		setPolicy(t, s, "tight", "^reports$", `{"max-length":1,"overflow":"drop-head"}`, 20)
		s.publishMessages(t, reportsQueue, stack.Job("dropped-1", []byte(`{}`)), stack.Job("kept-1", []byte(`{}`)))
		eventually(t, settleTimeout, "the dropped job in reports.dead", func() bool { return s.queue(t, reportsDead).Ready == 1 })
		msg, ok, err := s.adminChannel(t).Get(reportsDead, true) // auto-ack: take it
		if err != nil || !ok || msg.MessageId != "dropped-1" || msg.Headers["x-first-death-reason"] != "maxlen" {
			t.Errorf("in reports.dead: %q (reason %v), %v, %v; want dropped-1, maxlen", msg.MessageId, msg.Headers["x-first-death-reason"], ok, err)
		}
		if out, err := s.Rabbitmqctl(ctx, "clear_policy", "-p", stack.VHost, "tight"); err != nil {
			t.Fatalf("clear policy: %v\n%s", err, out)
		}
	})

	// The operator's fix: fpmq's policies above the catch-all.
	setPolicy(t, s, "fpmq-commands", "^commands$", `{"dead-letter-exchange":"","dead-letter-routing-key":"commands.dead"}`, 20)
	setPolicy(t, s, "fpmq-commands-dead", `^commands\.dead$`, `{"delivery-limit":1000000}`, 20)

	t.Run("once fpmq's policies apply again, the gauge recovers and dead list reads", func(t *testing.T) {
		eventually(t, settleTimeout, "both gauges 1", func() bool { return policyOK(jobOK, 1)() && policyOK(deadOK, 1)() })
		if n := strings.Count(containerLogs(t, d), "again what fpmq relies on"); n != 2 {
			t.Errorf("%d lines saying a queue is right again, want 2 (commands, commands.dead)", n)
		}
		list := s.deadList(t)
		if len(list) != 1 || list[0].ID != "exhausted-1" || list[0].Reason != "attempts-exhausted" {
			t.Errorf("dead list: %+v, want exhausted-1, attempts-exhausted", list)
		}
	})
}

// setPolicy sets the policy name on the stack's vhost, for queues only:
// RabbitMQ 3.10's set_policy knows no quorum_queues.
func setPolicy(t *testing.T, s *testStack, name, pattern, definition string, priority int) {
	t.Helper()
	if out, err := s.Rabbitmqctl(context.Background(), "set_policy", "-p", stack.VHost, "--apply-to", "queues",
		"--priority", fmt.Sprint(priority), name, pattern, definition); err != nil {
		t.Fatalf("set policy %s: %v\n%s", name, err, out)
	}
}

// rabbitMajor returns the major version of the stack's RabbitMQ.
func (s *testStack) rabbitMajor(t *testing.T) int {
	t.Helper()
	code, out, err := stack.Exec(context.Background(), s.RabbitMQ, "rabbitmq-diagnostics", "-q", "server_version")
	if err != nil || code != 0 {
		t.Fatalf("server_version: exit %d, %v: %s", code, err, out)
	}
	var major int
	if _, err := fmt.Sscanf(strings.TrimSpace(out), "%d.", &major); err != nil {
		t.Fatalf("server_version %q: %v", out, err)
	}
	return major
}
