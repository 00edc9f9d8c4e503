//go:build integration

package integration

import (
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/integration/stack"
)

// The Laravel test application (integration/frameworks/laravel, at
// laravelApp in the php-frameworks image) and its route.
const (
	laravelQueue   = "laravel"
	laravelEntry   = laravelApp + "/fpmq.php"
	laravelArtisan = laravelApp + "/artisan.php"
	// laravelRuns is where the application's jobs and Job* listeners
	// record what they do (App\Runs).
	laravelRuns = "/tmp/laravel/runs.log"
	// laravelBroken is the route of a copy of the application that a bad
	// deploy broke, in /tmp/broken.
	laravelBroken = "laravel-broken"
	// laravelBatch is the route of the batch's jobs, one at a time: the
	// test application keeps its batches in SQLite, whose deferred
	// transactions give up at once when two children update the batch
	// together, whatever the lock timeout (that attempt fails, and its job
	// runs again).
	laravelBatch = "laravel-batch"
)

// dispatched matches what artisan.php dispatch prints: the message id and
// when it dispatched, in Unix seconds.
var dispatched = regexp.MustCompile(`(?m)^dispatched (\S+) ([0-9.]+)$`)

// TestLaravel runs a Laravel 10 application's queued jobs through fpmq, on
// the real broker, daemon and php-fpm: the application dispatches them with
// its 'fpmq' queue connection (php/laravel's FpmqQueue), the daemon hands
// them to the pool's entry script, which runs them with Laravel's worker
// (php/laravel's Runner). One stack, one daemon, one job per subtest.
func TestLaravel(t *testing.T) {
	began := time.Now()
	s := newFrameworkStack(t, stackOptions{
		noDaemon:  true,
		rabbitEnv: map[string]string{"RABBITMQ_QUEUES": jobQueue + " " + reportsQueue + " " + laravelQueue + " " + laravelBroken + " " + laravelBatch},
	})
	s.startDaemon(t, map[string]string{
		"AMQP_QUEUE":      laravelQueue,
		"REQUEST_BODY":    "raw",
		"SCRIPT_FILENAME": laravelEntry,
	})
	// The pool passes no environment: the application reads the broker's
	// URL (the caller user's) from its .env, in /tmp as all it writes.
	if code, out := execIn(t, s.PHP, "sh", "-c", `mkdir -p /tmp/laravel && printf "AMQP_URL='%s'\n" "$1" >/tmp/laravel/.env`,
		"sh", s.URL(callerUser)); code != 0 {
		t.Fatalf("write .env: exit %d: %s", code, out)
	}
	s.artisan(t, "setup")

	t.Run("a job that succeeds runs once", func(t *testing.T) {
		id, _ := s.dispatch(t, "record", "once")
		run := s.awaitLaravelRuns(t, "once", 1)[0]
		if run.ID != id || run.JobID != id || run.Attempt != 1 || run.Queue != laravelQueue {
			t.Errorf("ran as %+v, want id %s, attempt 1 on %s", run, id, laravelQueue)
		}
		s.awaitLaravelQueueEmpty(t)
		if runs := s.laravelRuns(t, "run", "once"); len(runs) != 1 {
			t.Errorf("ran %d times, want once", len(runs))
		}
		if got := s.laravelEvents(t, id); !slices.Equal(got, []string{"JobProcessing 1", "JobProcessed 1"}) {
			t.Errorf("events %q, want JobProcessing then JobProcessed", got)
		}
		if !run.Preloaded {
			t.Error("php-fpm did not preload the application's provider, Runner and Worker: the pool is not as the README sets it up (php artisan fpmq:preload)")
		}
	})

	t.Run("tries 3 and backoff [1, 2]: two exceptions, then success", func(t *testing.T) {
		id, _ := s.dispatch(t, "flaky", "flaky")
		runs := s.awaitLaravelRuns(t, "flaky", 3)
		for i, want := range []float64{1, 2} {
			gap := runs[i+1].At - runs[i].At
			t.Logf("run %d began %.3f s after run %d (backoff %.0f s)", i+2, gap, i+1, want)
			if gap < want || gap > want+1 {
				t.Errorf("run %d began %.3f s after run %d, want %.0f s to %.0f s", i+2, gap, i+1, want, want+1)
			}
		}
		for i, r := range runs {
			if r.Attempt != i+1 {
				t.Errorf("run %d saw attempt %d", i+1, r.Attempt)
			}
		}
		s.awaitLaravelQueueEmpty(t)
		want := []string{"JobProcessing 1", "JobExceptionOccurred 1", "JobProcessing 2", "JobExceptionOccurred 2", "JobProcessing 3", "JobProcessed 3"}
		if got := s.laravelEvents(t, id); !slices.Equal(got, want) {
			t.Errorf("events %q, want %q", got, want)
		}
		if n := s.queue(t, laravelQueue+".dead").Ready; n != 0 {
			t.Errorf("%d dead letters, want none", n)
		}
	})

	t.Run("release(5) runs again no sooner than 5 s later", func(t *testing.T) {
		s.dispatch(t, "release", "release")
		runs := s.awaitLaravelRuns(t, "release", 2)
		gap := runs[1].At - runs[0].At
		t.Logf("release(5): the second run began %.3f s after the first", gap)
		if gap < 5 || gap > 6.5 {
			t.Errorf("the second run began %.3f s after the first, want 5 s to 6.5 s", gap)
		}
		if runs[1].Attempt != 2 {
			t.Errorf("the second run saw attempt %d", runs[1].Attempt)
		}
	})

	t.Run("a permanent failure calls failed(), is recorded and dead-lettered", func(t *testing.T) {
		id, _ := s.dispatch(t, "failing", "failing")
		dead := s.awaitDead(t, laravelQueue, 1)[0]
		const reason = "DomainException: permanent failure of failing"
		h := dead.Headers
		if dead.MessageId != id || h["x-fpmq-reason"] != "failed" || h["x-fpmq-last-error"] != reason || h["x-fpmq-attempts"] != int64(2) {
			t.Errorf("dead letter %s with headers %v, want %s failed after 2 attempts (the job's tries) with %q", dead.MessageId, h, id, reason)
		}
		if runs := s.laravelRuns(t, "run", "failing"); len(runs) != 2 {
			t.Errorf("ran %d times, want 2 ($tries)", len(runs))
		}
		failed := s.laravelRuns(t, "failed", "failing")
		if len(failed) != 1 || failed[0].Error != reason {
			t.Errorf("failed() calls %+v, want one with %q", failed, reason)
		}
		if f := s.failedJob(t, id); !strings.HasPrefix(f.Exception, reason) || f.Connection != "fpmq" || f.Queue != laravelQueue {
			t.Errorf("failed-jobs store has %+v, want fpmq, %s, %q", f, laravelQueue, reason)
		}
		if got := s.laravelEvents(t, id); !slices.Contains(got, "JobFailed 2") {
			t.Errorf("events %q, want JobFailed at attempt 2", got)
		}
	})

	t.Run("a delayed dispatch runs no earlier than due", func(t *testing.T) {
		_, at := s.dispatch(t, "record", "delayed", "3")
		run := s.awaitLaravelRuns(t, "delayed", 1)[0]
		t.Logf("delay(3): ran %.3f s after dispatch", run.At-at)
		if run.At-at < 3 || run.At-at > 5 {
			t.Errorf("ran %.3f s after dispatch, want 3 s to 5 s", run.At-at)
		}
	})

	t.Run("a chain runs in order", func(t *testing.T) {
		s.artisan(t, "chain", "chain")
		var order []string
		for _, tag := range []string{"chain-1", "chain-2", "chain-3"} {
			order = append(order, tag)
			s.awaitLaravelRuns(t, tag, 1)
		}
		var got []string
		for _, r := range s.laravelRuns(t, "run", "") {
			if strings.HasPrefix(r.Tag, "chain-") {
				got = append(got, r.Tag)
			}
		}
		if !slices.Equal(got, order) {
			t.Errorf("the chain ran %q, want %q", got, order)
		}
	})

	t.Run("a batch runs each job once, then its then() and finally()", func(t *testing.T) {
		s.startDaemon(t, map[string]string{
			"AMQP_QUEUE":      laravelBatch,
			"REQUEST_BODY":    "raw",
			"SCRIPT_FILENAME": laravelEntry,
			"CONCURRENCY":     "1",
		})
		code, out := execIn(t, s.PHP, "env", "FPMQ_QUEUE="+laravelBatch, "php", laravelArtisan, "batch", "batch")
		if code != 0 {
			t.Fatalf("batch: exit %d: %s", code, out)
		}
		id, ok := strings.CutPrefix(strings.TrimSpace(out), "dispatched ")
		if !ok || id == "" {
			t.Fatalf("batch: %q, want \"dispatched BATCH-ID\"", out)
		}
		for _, tag := range []string{"batch-1", "batch-2"} {
			if run := s.awaitLaravelRuns(t, tag, 1)[0]; run.Batch != id {
				t.Errorf("%s ran in batch %q, want %q", tag, run.Batch, id)
			}
		}
		var callbacks []laravelRun
		eventually(t, settleTimeout, "the batch's then() and finally()", func() bool {
			callbacks = s.laravelRuns(t, "batch", "")
			return len(callbacks) >= 2
		})
		var got []string
		for _, c := range callbacks {
			got = append(got, c.Tag)
			if c.ID != id || c.Pending != 0 {
				t.Errorf("%s of batch %q with %d pending, want batch %q with none", c.Tag, c.ID, c.Pending, id)
			}
		}
		if !slices.Equal(got, []string{"then", "finally"}) {
			t.Errorf("callbacks %q, want then, then finally, once each", got)
		}
		for _, tag := range []string{"batch-1", "batch-2"} {
			if runs := s.laravelRuns(t, "run", tag); len(runs) != 1 {
				t.Errorf("%s ran %d times, want once: %+v", tag, len(runs), runs)
			}
		}
	})

	t.Run("a laravel-queue-rabbitmq message runs, its attempts counted", func(t *testing.T) {
		out := s.artisan(t, "payload", "rabbitmq")
		var payload struct {
			UUID string `json:"uuid"`
			ID   string `json:"id"`
		}
		body := lastLine(out)
		if err := json.Unmarshal([]byte(body), &payload); err != nil || payload.ID == "" {
			t.Fatalf("payload %q: %v", body, err)
		}
		// As laravel-queue-rabbitmq publishes a job released once: no
		// message id, the payload's id as correlation id, the runs so far
		// in the laravel header table.
		s.publishMessages(t, laravelQueue, amqp.Publishing{
			ContentType:   "application/json",
			DeliveryMode:  amqp.Persistent,
			CorrelationId: payload.ID,
			Body:          []byte(body),
			Headers:       amqp.Table{"laravel": amqp.Table{"attempts": int32(1)}},
		})
		run := s.awaitLaravelRuns(t, "rabbitmq", 1)[0]
		if run.Attempt != 2 || run.ID != payload.UUID {
			t.Errorf("ran as %+v, want attempt 2 (1 before) of %s", run, payload.UUID)
		}
	})

	t.Run("a body that is no Laravel payload is dead-lettered naming what was expected", func(t *testing.T) {
		s.publishMessages(t, laravelQueue, stack.Job("not-laravel", []byte(`{"hello":"world"}`)))
		eventually(t, settleTimeout, "the dead letter", func() bool { return s.queue(t, laravelQueue+".dead").Ready == 1 })
		// Queue::size() of the application: a passive declare of the queue.
		if got := strings.TrimSpace(lastLine(s.artisan(t, "size", laravelQueue+".dead"))); got != "1" {
			t.Errorf("Queue::size(%s.dead) = %q, want 1", laravelQueue, got)
		}
		dead := s.awaitDead(t, laravelQueue, 1)[0]
		reason, _ := dead.Headers["x-fpmq-last-error"].(string)
		if dead.MessageId != "not-laravel" || dead.Headers["x-fpmq-reason"] != "failed" || dead.Headers["x-fpmq-attempts"] != int64(1) ||
			!strings.HasPrefix(reason, `not a Laravel queue payload: a JSON object with "job"`) {
			t.Errorf("dead letter %s with headers %v, want failed once, naming a Laravel queue payload", dead.MessageId, dead.Headers)
		}
	})

	t.Run("a job class removed by a deploy fails once", func(t *testing.T) {
		id, _ := s.dispatch(t, "removed", "removed")
		dead := s.awaitDead(t, laravelQueue, 1)[0]
		const reason = `Fpmq\Laravel\MissingJobClassException: job class App\Jobs\RemovedJob does not exist`
		last, _ := dead.Headers["x-fpmq-last-error"].(string)
		if dead.MessageId != id || dead.Headers["x-fpmq-reason"] != "failed" || dead.Headers["x-fpmq-attempts"] != int64(1) || !strings.HasPrefix(last, reason) {
			t.Errorf("dead letter %s with headers %v, want %s failed once with %q", dead.MessageId, dead.Headers, id, reason)
		}
		if f := s.failedJob(t, id); !strings.HasPrefix(f.Exception, reason) {
			t.Errorf("failed-jobs store has %+v, want %q", f, reason)
		}
	})

	t.Run("an application that cannot boot is a failed attempt, and its job runs once fixed", func(t *testing.T) {
		// A deploy with a syntax error in the application's configuration:
		// a copy of the application, run by a daemon of its own. (Not in a
		// class: php-fpm preloaded the application's classes at its start,
		// from the image, as a deploy's restart would from the broken code.)
		const broken = "/tmp/broken"
		const config = "/config/app.php"
		if code, out := execIn(t, s.PHP, "sh", "-c", `rm -rf "$1" && cp -r "$2" "$1" && printf '<?php\nreturn [\n' >"$1$3"`,
			"sh", broken, laravelApp, config); code != 0 {
			t.Fatalf("break the copy: exit %d: %s", code, out)
		}
		d := s.startDaemon(t, map[string]string{
			"AMQP_QUEUE":      laravelBroken,
			"REQUEST_BODY":    "raw",
			"SCRIPT_FILENAME": broken + "/fpmq.php",
			"MAX_ATTEMPTS":    "10",
		})
		code, out := execIn(t, s.PHP, "env", "FPMQ_QUEUE="+laravelBroken, "php", laravelArtisan, "dispatch", "record", "broken")
		if code != 0 || !dispatched.MatchString(out) {
			t.Fatalf("dispatch to %s: exit %d: %s", laravelBroken, code, out)
		}
		// The entry script's error_log reaches the daemon's log, once an attempt.
		eventually(t, settleTimeout, "two failed attempts in the daemon's log", func() bool {
			return strings.Count(containerLogs(t, d), "the Laravel application did not boot: ParseError") >= 2
		})
		if code, out := execIn(t, s.PHP, "cp", laravelApp+config, broken+config); code != 0 {
			t.Fatalf("fix the copy: exit %d: %s", code, out)
		}
		run := s.awaitLaravelRuns(t, "broken", 1)[0]
		t.Logf("fixed, the job ran at attempt %d", run.Attempt)
		if run.Attempt < 3 || run.Queue != laravelBroken {
			t.Errorf("ran as %+v, want attempt 3 or later on %s", run, laravelBroken)
		}
		if n := s.queue(t, laravelBroken+".dead").Ready; n != 0 {
			t.Errorf("%d dead letters, want none", n)
		}
	})

	t.Logf("TestLaravel took %s, the stack's start included", time.Since(began).Round(time.Second))
}

// laravelRun is one line of the application's runs.log (App\Runs).
type laravelRun struct {
	Kind    string  `json:"kind"` // run, failed or event
	Tag     string  `json:"tag"`
	ID      string  `json:"id"`     // the payload's uuid
	JobID   string  `json:"job_id"` // the job's getJobId()
	Attempt int     `json:"attempt"`
	Queue   string  `json:"queue"`
	At      float64 `json:"at"` // Unix seconds
	Error   string  `json:"error"`
	Event   string  `json:"event"`
	Batch   string  `json:"batch"`   // the job's batch id, if any
	Pending int     `json:"pending"` // a batch callback's pending jobs
	// Preloaded says php-fpm preloaded the application's provider, the
	// bridge's Runner and Laravel's Worker (Runs::preloaded).
	Preloaded bool `json:"preloaded"`
}

// laravelRuns returns the records of kind, of the tagged job (any with
// tag ""), in order.
func (s *testStack) laravelRuns(t *testing.T, kind, tag string) []laravelRun {
	t.Helper()
	// Read in the container: /tmp is a tmpfs, which docker cp does not see.
	code, out := execIn(t, s.PHP, "sh", "-c", `cat "$1" 2>/dev/null || true`, "sh", laravelRuns)
	if code != 0 {
		t.Fatalf("read %s: exit %d: %s", laravelRuns, code, out)
	}
	var runs []laravelRun
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r laravelRun
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("runs.log line %q: %v", line, err)
		}
		if r.Kind == kind && (tag == "" || r.Tag == tag) {
			runs = append(runs, r)
		}
	}
	return runs
}

// laravelEvents returns the Job* events fired for the job id, as "Event attempt".
func (s *testStack) laravelEvents(t *testing.T, id string) []string {
	t.Helper()
	var events []string
	for _, r := range s.laravelRuns(t, "event", "") {
		if r.ID == id {
			events = append(events, r.Event+" "+strconv.Itoa(r.Attempt))
		}
	}
	return events
}

// awaitLaravelRuns waits until the tagged job ran n times and returns its runs.
func (s *testStack) awaitLaravelRuns(t *testing.T, tag string, n int) []laravelRun {
	t.Helper()
	var runs []laravelRun
	eventually(t, settleTimeout, tag+" ran "+strconv.Itoa(n)+" times", func() bool {
		runs = s.laravelRuns(t, "run", tag)
		return len(runs) >= n
	})
	return runs
}

// awaitLaravelQueueEmpty waits until the route holds no job, ready or running.
func (s *testStack) awaitLaravelQueueEmpty(t *testing.T) {
	t.Helper()
	eventually(t, settleTimeout, "the queue empty", func() bool {
		q := s.queue(t, laravelQueue)
		return q.Ready == 0 && q.Unacked == 0
	})
}

// artisan runs the application's artisan.php with args in the php-fpm
// container and returns its output, failing the test unless it succeeds.
func (s *testStack) artisan(t *testing.T, args ...string) string {
	t.Helper()
	code, out := execIn(t, s.PHP, append([]string{"php", laravelArtisan}, args...)...)
	if code != 0 {
		t.Fatalf("artisan.php %q: exit %d:\n%s", args, code, out)
	}
	return out
}

// dispatch dispatches a job of the application's (artisan.php dispatch)
// and returns its message id and when it was dispatched, Unix seconds.
func (s *testStack) dispatch(t *testing.T, args ...string) (string, float64) {
	t.Helper()
	out := s.artisan(t, append([]string{"dispatch"}, args...)...)
	m := dispatched.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("artisan.php dispatch %q printed %q", args, out)
	}
	at, err := strconv.ParseFloat(m[2], 64)
	if err != nil {
		t.Fatal(err)
	}
	return m[1], at
}

// laravelFailedJob is a row of the application's failed-jobs store.
type laravelFailedJob struct {
	UUID       string `json:"uuid"`
	Connection string `json:"connection"`
	Queue      string `json:"queue"`
	Exception  string `json:"exception"` // its first line
}

// failedJob returns the failed-jobs store's row of the job id, failing
// the test when there is none.
func (s *testStack) failedJob(t *testing.T, id string) laravelFailedJob {
	t.Helper()
	var rows []laravelFailedJob
	out := lastLine(s.artisan(t, "failed"))
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("artisan.php failed printed %q: %v", out, err)
	}
	for _, r := range rows {
		if r.UUID == id {
			return r
		}
	}
	t.Fatalf("no failed job %s in %+v", id, rows)
	return laravelFailedJob{}
}

// lastLine returns the last non-empty line of out.
func lastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}
