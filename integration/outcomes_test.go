//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/testcontainers/testcontainers-go"

	"github.com/fpmq/fpmq/integration/stack"
)

// The test scripts (testdata/php) are bound into php-fpm here.
const (
	testScripts  = "/app/test"
	misbehave    = testScripts + "/misbehave.php"
	misbehaveLog = stack.WorkerLogDir + "/misbehave.log"
)

// TestOutcomes runs jobs that fail in each of the ways a real php-fpm and
// PHP fail, and checks that the daemon decides what happened to each
// correctly: what php-fpm says itself is not the job's answer, a script
// that died is never done, every request reaches PHP, nothing reaches it
// altered, the consumer never stops silently, and the daemon's memory does
// not depend on what a worker prints.
func TestOutcomes(t *testing.T) {
	s := newStack(t, stackOptions{
		noDaemon: true,
		phpBinds: []string{filepath.Join(repoRoot(t), "integration", "testdata", "php") + ":" + testScripts + ":ro"},
	})

	t.Run("php-fpm's own refusals pause the daemon and lose nothing", func(t *testing.T) {
		for _, tc := range []struct{ queue, script, says string }{
			{"missing", "/app/missing.php", "Primary script unknown"},
			{"refused", testScripts + "/notphp.txt", "security.limit_extensions"},
		} {
			d := s.routeDaemon(t, tc.queue, map[string]string{"SCRIPT_FILENAME": tc.script})
			s.publishTo(t, tc.queue, 3)
			eventually(t, settleTimeout, tc.queue+": paused and not ready, naming the script", func() bool {
				body, code := get(t, d, "/readyz")
				return code == http.StatusServiceUnavailable && strings.Contains(body, tc.script) && strings.Contains(body, tc.says)
			})
			logs := containerLogs(t, d)
			if !strings.Contains(logs, "php-fpm cannot run the worker script") || !strings.Contains(logs, tc.script) {
				t.Errorf("%s: no error naming the script in the log:\n%s", tc.queue, tail(logs, 40))
			}
			if m := scrape(t, d); m[series("fpmq_consumption_paused", tc.queue)] != 1 || m[series("fpmq_jobs_retried_total", tc.queue)] != 0 {
				t.Errorf("%s: paused %g, retried %g; want paused and no attempt counted", tc.queue, m[series("fpmq_consumption_paused", tc.queue)], m[series("fpmq_jobs_retried_total", tc.queue)])
			}
			q := s.queue(t, tc.queue)
			if q.Ready+q.Unacked != 3 || s.queue(t, tc.queue+".dead").Ready != 0 {
				t.Errorf("%s: %d ready + %d unacked and %d dead; want the 3 jobs kept and none dead", tc.queue, q.Ready, q.Unacked, s.queue(t, tc.queue+".dead").Ready)
			}
		}
	})

	t.Run("a script that died is never done", func(t *testing.T) {
		d := s.routeDaemon(t, "dies", map[string]string{"SCRIPT_FILENAME": misbehave, "MAX_ATTEMPTS": "2"})
		kinds := []string{"fatal", "fatal-after-output", "exception", "memory"}
		var msgs []amqp.Publishing
		for _, do := range kinds {
			msgs = append(msgs, stack.Job("dies-"+do, []byte(fmt.Sprintf(`{"do":%q}`, do))))
		}
		s.publishMessages(t, "dies", msgs...)
		dead := s.awaitDead(t, "dies", len(kinds))
		for _, m := range dead {
			if m.Headers["x-fpmq-reason"] != "attempts-exhausted" || !strings.Contains(fmt.Sprint(m.Headers["x-fpmq-last-error"]), "PHP Fatal error") {
				t.Errorf("%s: dead letter headers %v, want attempts-exhausted with the fatal error", m.MessageId, m.Headers)
			}
		}
		runs := s.misbehaveRuns(t)
		for _, do := range kinds {
			if n := runs["dies-"+do]; n != 2 {
				t.Errorf("%s ran %d times, want 2 (MAX_ATTEMPTS)", do, n)
			}
		}
		if m := scrape(t, d); m[series("fpmq_jobs_succeeded_total", "dies")] != 0 || m[series("fpmq_worker_fatal_errors_total", "dies")] != 8 {
			t.Errorf("succeeded %g, fatal errors %g; want 0 and 8", m[series("fpmq_jobs_succeeded_total", "dies")], m[series("fpmq_worker_fatal_errors_total", "dies")])
		}

		s.routeDaemon(t, "unparsable", map[string]string{"SCRIPT_FILENAME": testScripts + "/parse-error.php", "MAX_ATTEMPTS": "1"})
		s.publishTo(t, "unparsable", 1)
		if m := s.awaitDead(t, "unparsable", 1)[0]; !strings.Contains(fmt.Sprint(m.Headers["x-fpmq-last-error"]), "PHP Parse error") {
			t.Errorf("parse error: dead letter headers %v", m.Headers)
		}
	})

	t.Run("a child killed mid-job is one failed attempt, with or without keep-alive", func(t *testing.T) {
		for _, keep := range []string{"false", "true"} {
			queue := "killed-" + keep
			s.routeDaemon(t, queue, map[string]string{"SCRIPT_FILENAME": misbehave, "MAX_ATTEMPTS": "3", "FASTCGI_KEEPALIVE": keep, "CONCURRENCY": "2"})
			s.publishMessages(t, queue, stack.Job(queue, []byte(`{"do":"kill"}`)))
			dead := s.awaitDead(t, queue, 1)
			if dead[0].Headers["x-fpmq-reason"] != "attempts-exhausted" {
				t.Errorf("keep-alive %s: dead letter headers %v", keep, dead[0].Headers)
			}
			if n := s.misbehaveRuns(t)[queue]; n != 3 {
				t.Errorf("keep-alive %s: the job ran %d times, want 3 (MAX_ATTEMPTS)", keep, n)
			}
		}
	})

	t.Run("large headers reach php-fpm; one too large for any record is left out, named", func(t *testing.T) {
		s.routeDaemon(t, "headers", map[string]string{"SCRIPT_FILENAME": misbehave})
		many := amqp.Table{}
		for i := range 200 {
			many[fmt.Sprintf("h%03d", i)] = strings.Repeat("v", 400)
		}
		manyMsg := stack.Job("headers-many", []byte(`{"do":"echo"}`))
		manyMsg.Headers = many
		hugeMsg := stack.Job("headers-huge", []byte(`{"do":"echo"}`))
		hugeMsg.Headers = amqp.Table{"big": strings.Repeat("x", 70_000), "small": "ok"}
		s.publishMessages(t, "headers", manyMsg, hugeMsg)
		eventually(t, settleTimeout, "both jobs ran", func() bool { return len(s.misbehaveRecords(t, "headers-many", "headers-huge")) == 2 })
		recs := s.misbehaveRecords(t, "headers-many", "headers-huge")
		if got := recs["headers-many"].Server["HTTP_X_HEADER_H199"]; len(got) != 400 {
			t.Errorf("200 headers: h199 arrived as %d bytes", len(got))
		}
		huge := recs["headers-huge"].Server
		if huge["HTTP_X_HEADER_SMALL"] != "ok" || huge["HTTP_X_FPMQ_OMITTED_HEADERS"] != "big,x-fpmq-message" || huge["HTTP_X_HEADER_BIG"] != "" {
			t.Errorf("70 KB header: worker saw %v", keysOf(huge))
		}
		eventually(t, settleTimeout, "queue empty", func() bool { q := s.queue(t, "headers"); return q.Ready == 0 && q.Unacked == 0 })
	})

	t.Run("nothing reaches PHP altered", func(t *testing.T) {
		s.routeDaemon(t, "fields", map[string]string{"SCRIPT_FILENAME": misbehave})
		items := strings.TrimSuffix(strings.Repeat("1,", 1200), ",")
		s.publishMessages(t, "fields",
			stack.Job("fields-dot", []byte(`{"do":"echo","user.email":"a@b.example"}`)),
			stack.Job("fields-space", []byte(`{"do":"echo","first name":"Ada"}`)),
			stack.Job("fields-bracket", []byte(`{"do":"echo","number":11,"number[]":7}`)),
			stack.Job("fields-many", []byte(`{"do":"echo","items":[`+items+`]}`)),
			stack.Job("fields-fine", []byte(`{"do":"echo","user":{"email":"a@b.example","tags":["x","y"]},"n":3}`)),
		)
		dead := s.awaitDead(t, "fields", 4)
		for _, m := range dead {
			if m.Headers["x-fpmq-reason"] != "form-mismatch" {
				t.Errorf("%s: reason %v, want form-mismatch", m.MessageId, m.Headers["x-fpmq-reason"])
			}
		}
		eventually(t, settleTimeout, "the fine job ran", func() bool { return len(s.misbehaveRecords(t, "fields-fine")) == 1 })
		got := s.misbehaveRecords(t, "fields-dot", "fields-space", "fields-bracket", "fields-many", "fields-fine")
		if len(got) != 1 {
			t.Errorf("jobs PHP would have altered ran: %v", keysOfRecords(got))
		}
		post, _ := json.Marshal(got["fields-fine"].Post)
		if string(post) != `{"do":"echo","user":{"email":"a@b.example","tags":["x","y"]},"n":"3"}` {
			t.Errorf("the fine job arrived as %s", post)
		}
	})

	t.Run("a deleted queue is declared again and consumed", func(t *testing.T) {
		d := s.routeDaemon(t, "deleted", map[string]string{"SCRIPT_FILENAME": misbehave})
		if _, err := s.adminChannel(t).QueueDelete("deleted", false, false, false); err != nil {
			t.Fatalf("delete queue: %v", err)
		}
		eventually(t, settleTimeout, "the queue is back with a consumer", func() bool {
			q, err := s.Queue(context.Background(), "deleted")
			return err == nil && q.Consumers == 1
		})
		s.publishMessages(t, "deleted", stack.Job("deleted-after", []byte(`{"do":"ok"}`)))
		eventually(t, settleTimeout, "the job published afterwards ran", func() bool { return len(s.misbehaveRecords(t, "deleted-after")) == 1 })
		if logs := containerLogs(t, d); !strings.Contains(logs, "the broker cancelled the consumer") {
			t.Errorf("the broker's cancel is not in the log:\n%s", tail(logs, 40))
		}
	})

	t.Run("a refused copy is tried again without running the job again", func(t *testing.T) {
		d := s.routeDaemon(t, "full", map[string]string{"SCRIPT_FILENAME": misbehave, "MAX_ATTEMPTS": "1", "RETRY_MAX_DELAY": "1s"})
		if out, err := s.Rabbitmqctl(context.Background(), "set_policy", "-p", vhost, "--apply-to", "queues", "full-dead", `^full\.dead$`, `{"max-length":0,"overflow":"reject-publish"}`); err != nil {
			t.Fatalf("set policy: %v\n%s", err, out)
		}
		s.publishMessages(t, "full", stack.Job("full-1", []byte(`{"do":"fail"}`)))
		eventually(t, settleTimeout, "not ready while the copy is refused", func() bool {
			body, code := get(t, d, "/readyz")
			return code == http.StatusServiceUnavailable && strings.Contains(body, "copies") && scrape(t, d)[series("fpmq_copy_publish_failures_total", "full")] >= 3
		})
		if n := s.misbehaveRuns(t)["full-1"]; n != 1 {
			t.Errorf("the job ran %d times while its copy was refused, want 1", n)
		}
		if out, err := s.Rabbitmqctl(context.Background(), "clear_policy", "-p", vhost, "full-dead"); err != nil {
			t.Fatalf("clear policy: %v\n%s", err, out)
		}
		s.awaitDead(t, "full", 1)
		eventually(t, settleTimeout, "ready again", func() bool { return readyz(t, d) == http.StatusOK })
	})

	t.Run("a pool busy with the daemon's own jobs is ready", func(t *testing.T) {
		d := s.routeDaemon(t, "busy", map[string]string{"SCRIPT_FILENAME": misbehave})
		var msgs []amqp.Publishing
		for i := range 5 {
			msgs = append(msgs, stack.Job(fmt.Sprintf("busy-%d", i), []byte(`{"do":"sleep","seconds":"12"}`)))
		}
		s.publishMessages(t, "busy", msgs...)
		eventually(t, settleTimeout, "every child busy", func() bool { return scrape(t, d)[series("fpmq_jobs_in_flight", "busy")] == 5 })
		// Past the window in which a recent answer proves the pool is there,
		// readiness must not ask a ping to wait for a child.
		time.Sleep(6 * time.Second)
		if body, code := get(t, d, "/readyz"); code != http.StatusOK {
			t.Errorf("/readyz with every child busy: %d %s", code, body)
		}
		if code := healthcheck(t, d); code != 0 {
			t.Errorf("daemon healthcheck with every child busy: exit %d", code)
		}
	})

	t.Run("the daemon's memory does not depend on what workers print", func(t *testing.T) {
		d := s.routeDaemon(t, "loud", map[string]string{"SCRIPT_FILENAME": misbehave, "REQUEST_TIMEOUT": "5m"})
		var msgs []amqp.Publishing
		for i := range 5 {
			msgs = append(msgs,
				stack.Job(fmt.Sprintf("loud-print-%d", i), []byte(`{"do":"print","mib":"200"}`)),
				stack.Job(fmt.Sprintf("loud-log-%d", i), []byte(`{"do":"errorlog","times":"200000"}`)))
		}
		s.publishMessages(t, "loud", msgs...)
		peak := 0.0
		eventually(t, 5*time.Minute, "the loud jobs done", func() bool {
			m := scrape(t, d)
			peak = max(peak, m["process_resident_memory_bytes"])
			return m[series("fpmq_jobs_succeeded_total", "loud")] == 10
		})
		t.Logf("daemon peak RSS while 5 jobs printed 200 MiB and 5 logged 200,000 messages: %.1f MiB", peak/(1<<20))
		if peak > 50<<20 {
			t.Errorf("daemon RSS reached %.1f MiB, want under 50 MiB", peak/(1<<20))
		}
		// The daemon writes its log lines in batches (LOG_FLUSH_INTERVAL).
		var logs string
		eventually(t, 10*time.Second, "the count of dropped stderr messages in the log", func() bool {
			logs = containerLogs(t, d)
			return strings.Contains(logs, `"dropped_messages":199980`)
		})
		if n := strings.Count(logs, `"message":"worker stderr"`); n > 5*20 {
			t.Errorf("%d stderr events logged for 5 jobs, want at most 20 each", n)
		}
	})
}

// routeDaemon starts a daemon of its own on queue (as the admin, who may
// use any queue) with env, and waits until it is ready.
func (s *testStack) routeDaemon(t *testing.T, queue string, env map[string]string) *testcontainers.DockerContainer {
	t.Helper()
	e := map[string]string{"AMQP_QUEUE": queue, "AMQP_URL": s.URL(rabbitUser)}
	for k, v := range env {
		e[k] = v
	}
	return s.startDaemon(t, e)
}

// publishMessages publishes msgs to queue from the host, with confirms.
func (s *testStack) publishMessages(t *testing.T, queue string, msgs ...amqp.Publishing) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	if err := stack.PublishConfirmed(ctx, s.adminChannel(t), queue, len(msgs), func(i int) amqp.Publishing { return msgs[i] }); err != nil {
		t.Fatal(err)
	}
}

// awaitDead waits until queue's dead-letter queue holds n jobs and takes them.
func (s *testStack) awaitDead(t *testing.T, queue string, n int) []amqp.Delivery {
	t.Helper()
	eventually(t, settleTimeout, fmt.Sprintf("%d dead letters in %s.dead", n, queue), func() bool {
		return s.queue(t, queue+".dead").Ready == n
	})
	ch := s.adminChannel(t)
	var got []amqp.Delivery
	for range n {
		d, ok, err := ch.Get(queue+".dead", true) // true: auto-ack
		if err != nil || !ok {
			t.Fatalf("get from %s.dead: %v %v", queue, ok, err)
		}
		got = append(got, d)
	}
	return got
}

// misbehaveRecord is one run of misbehave.php, as it logged it.
type misbehaveRecord struct {
	Do      string            `json:"do"`
	ID      string            `json:"id"`
	Attempt string            `json:"attempt"` // $_SERVER['HTTP_X_ATTEMPT']
	At      float64           `json:"at"`      // when the run started, in Unix seconds
	Fixed   bool              `json:"fixed"`   // "broken" only: whether it ran fixed, and succeeded
	Post    json.RawMessage   `json:"post"`
	Input   string            `json:"input"` // "echo" and "raw": php://input
	Server  map[string]string `json:"server"`
}

func (s *testStack) misbehaveLines(t *testing.T) []misbehaveRecord {
	t.Helper()
	r, err := s.PHP.CopyFileFromContainer(context.Background(), misbehaveLog)
	if err != nil {
		return nil // not written yet
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	var recs []misbehaveRecord
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec misbehaveRecord
		if line != "" && json.Unmarshal([]byte(line), &rec) == nil {
			recs = append(recs, rec)
		}
	}
	return recs
}

// misbehaveRuns counts the runs of misbehave.php by message id.
func (s *testStack) misbehaveRuns(t *testing.T) map[string]int {
	t.Helper()
	runs := map[string]int{}
	for _, r := range s.misbehaveLines(t) {
		runs[r.ID]++
	}
	return runs
}

// misbehaveRecords returns the last record of each of ids that ran.
func (s *testStack) misbehaveRecords(t *testing.T, ids ...string) map[string]misbehaveRecord {
	t.Helper()
	got := map[string]misbehaveRecord{}
	for _, r := range s.misbehaveLines(t) {
		for _, id := range ids {
			if r.ID == id {
				got[id] = r
			}
		}
	}
	return got
}

func keysOf(m map[string]string) []string {
	var k []string
	for name := range m {
		k = append(k, name)
	}
	return k
}

func keysOfRecords(m map[string]misbehaveRecord) []string {
	var k []string
	for name := range m {
		k = append(k, name)
	}
	return k
}
