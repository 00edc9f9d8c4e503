//go:build integration

package integration

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestEndToEnd runs the system as compose does and drives it like a user:
// the caller image sends jobs, the worker log shows what ran.
func TestEndToEnd(t *testing.T) {
	s := newStack(t, stackOptions{children: 5, workerSleep: 1})

	// Runs first, on a fresh broker: nothing must reach it.
	t.Run("caller rejects bad input and publishes nothing", func(t *testing.T) {
		const probe = "probe.bad-input"
		env := map[string]string{"AMQP_QUEUE": probe, "AMQP_URL": s.URL(rabbitUser)}
		for _, args := range [][]string{
			{},
			{"abc"},
			{"1.5"},
			{"7", "x7"},
			{"9223372036854775808"},
		} {
			code, out := s.runCaller(t, env, args...)
			if code != 2 {
				t.Errorf("caller %q: exit %d, want 2; output:\n%s", args, code, out)
			}
			if len(args) > 0 && !strings.Contains(out, strconv.Quote(args[len(args)-1])) {
				t.Errorf("caller %q: output does not name the bad value:\n%s", args, out)
			}
			if !strings.Contains(out, "usage: caller") || !strings.Contains(out, "caller -h") {
				t.Errorf("caller %q: no synopsis and pointer to -h in output:\n%s", args, out)
			}
		}
		if q := s.queue(t, probe); q.Exists {
			t.Fatalf("bad input reached the broker: queue %s exists with %d messages", probe, q.Ready)
		}
		// The same check sees a message that does get through.
		code, out := s.runCaller(t, env, "7")
		if code != 0 {
			t.Fatalf("caller 7: exit %d:\n%s", code, out)
		}
		if q := s.queue(t, probe); !q.Exists || q.Ready != 1 {
			t.Fatalf("after a valid publish, queue %s = %+v, want 1 ready message", probe, q)
		}
	})

	t.Run("100 jobs each run exactly once", func(t *testing.T) {
		args := make([]string, 100)
		for i := range args {
			args[i] = strconv.Itoa(i + 1)
		}
		start := time.Now()
		code, out := s.runCaller(t, nil, args...)
		if code != 0 {
			t.Fatalf("caller exit %d:\n%s", code, out)
		}
		for _, n := range args {
			if !strings.Contains(out, " [x] Message sent: "+n+"\n") {
				t.Fatalf("caller did not report %s as sent:\n%s", n, out)
			}
		}

		// 100 jobs of 1 s on 5 children take 20 s at best; the bound only
		// catches a stack that is stuck or serialised.
		eventually(t, 90*time.Second, "all 100 jobs processed", func() bool {
			return len(s.processed(t)) >= 100
		})
		elapsed := time.Since(start)
		// A job's line is written when it starts, so the last of 20 rounds
		// of five starts after 19 s; much less means nothing slept.
		counts := s.processed(t)
		for i := int64(1); i <= 100; i++ {
			if counts[i] != 1 {
				t.Errorf("job %d processed %d times, want once", i, counts[i])
			}
		}
		eventually(t, settleTimeout, "queue empty and nothing unacked", func() bool {
			q := s.queue(t, jobQueue)
			return q.Exists && q.Ready == 0 && q.Unacked == 0 && q.Consumers == 1
		})
		t.Logf("100 jobs of 1 s on 5 children: %s (ideal 20 s)", elapsed.Round(100*time.Millisecond))
		if elapsed < 15*time.Second {
			t.Errorf("100 jobs took %s: faster than 5 children can sleep 1 s each, so the jobs did not really run", elapsed)
		}
	})

	t.Run("bad messages are dead-lettered with their reason and the next job still runs", func(t *testing.T) {
		want := map[string]string{ // body -> reason
			"not json":                      "malformed",
			`["a","list"]`:                  "malformed",
			`{"number":"abc"}`:              "rejected", // the worker's own check: 400
			`{"name":"no number"}`:          "rejected",
			`{"number":1,"user.email":"x"}`: "form-mismatch", // PHP would rename the field
		}
		var bodies [][]byte
		for body := range want {
			bodies = append(bodies, []byte(body))
		}
		s.publish(t, append(bodies, []byte(`{"number":424242}`))...)
		eventually(t, settleTimeout, "job 424242 processed", func() bool {
			return s.processed(t)[424242] == 1
		})
		eventually(t, settleTimeout, "queue empty and the bad messages dead-lettered", func() bool {
			q := s.queue(t, jobQueue)
			return q.Ready == 0 && q.Unacked == 0 && s.queue(t, deadQueue).Ready == len(want)
		})
		dead := s.deadLetters(t)
		if len(dead) != len(want) {
			t.Fatalf("got %d dead letters, want %d", len(dead), len(want))
		}
		for _, d := range dead {
			if d.Headers["x-fpmq-reason"] != want[string(d.Body)] || d.Headers["x-fpmq-last-error"] == "" {
				t.Errorf("dead letter %q has headers %v, want reason %s and an error", d.Body, d.Headers, want[string(d.Body)])
			}
		}
	})

	t.Run("a body over 64 KiB reaches the worker whole", func(t *testing.T) {
		// The number comes last: if the body were cut short, the worker
		// would not see it and would answer 400 instead of processing it.
		payload := strings.Repeat("0123456789abcdef", 100*1024/16)
		body := fmt.Sprintf(`{"payload":%q,"number":515151}`, payload)
		if len(body) <= 64*1024 {
			t.Fatalf("test body is only %d bytes", len(body))
		}
		s.publish(t, []byte(body))
		eventually(t, settleTimeout, "job 515151 processed", func() bool {
			return s.processed(t)[515151] == 1
		})
	})

	t.Run("a queue declared with other arguments is a clear error, not a crash loop", func(t *testing.T) {
		d := s.startDaemonUntil(t, map[string]string{"AMQP_QUEUE_TYPE": "quorum"}, "queue exists with other arguments")
		logs := containerLogs(t, d)
		if !strings.Contains(logs, "x-queue-type") {
			t.Errorf("the error does not name the argument:\n%s", tail(logs, 5))
		}
		state, err := d.State(context.Background())
		if err != nil || !state.Running {
			t.Errorf("the daemon exited (state %+v, %v); it should keep retrying", state, err)
		}
	})

	t.Run("quorum queues", func(t *testing.T) {
		const queue = "quorum-jobs"
		env := map[string]string{"AMQP_QUEUE": queue, "AMQP_QUEUE_TYPE": "quorum", "AMQP_URL": s.URL(rabbitUser)}
		s.startDaemon(t, env)
		code, out := s.runCaller(t, env, "616161")
		if code != 0 {
			t.Fatalf("caller exit %d:\n%s", code, out)
		}
		eventually(t, settleTimeout, "job 616161 processed", func() bool {
			return s.processed(t)[616161] == 1
		})
		queues, err := s.Queues(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		// The first retry queue is named after the test daemons' RETRY_INITIAL_DELAY.
		for _, q := range []string{queue, queue + ".dead", queue + ".retry." + retryDelay} {
			if got := queues[q].Type; got != "quorum" {
				t.Errorf("queue %s has type %q, want quorum (all: %v)", q, got, queues)
			}
		}
	})
}
