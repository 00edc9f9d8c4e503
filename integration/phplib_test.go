//go:build integration

package integration

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/integration/stack"
)

// enqueueScript publishes jobs with the PHP library: see its header.
const enqueueScript = testScripts + "/enqueue.php"

// sentID matches what enqueue.php prints for a confirmed job.
var sentID = regexp.MustCompile(`(?m)^sent ([0-9a-f]{32})$`)

// enqueue runs enqueue.php with args in a container of the php-fpm image,
// as the caller user, with env added, and returns its exit status and
// output.
func (s *testStack) enqueue(t *testing.T, env map[string]string, args ...string) (int, string) {
	t.Helper()
	binds := []string{filepath.Join(repoRoot(t), "integration", "testdata", "php") + ":" + testScripts + ":ro"}
	c := s.run(t, s.PHPCommand, stack.Run{Env: env, Binds: binds, Args: append([]string{"php", enqueueScript}, args...)})
	return exitCode(t, c), containerLogs(t, c)
}

// enqueueOK runs enqueue.php, requires it to succeed, and returns the
// message id it printed.
func (s *testStack) enqueueOK(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	code, out := s.enqueue(t, env, args...)
	m := sentID.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("enqueue.php %q: exit %d:\n%s", args, code, out)
	}
	return m[1]
}

// TestPHPLibrary publishes jobs with the PHP library in php/, from a
// container of the project's php-fpm image as the caller user, and checks
// that they are the Go caller's messages, that the daemon runs them, and
// that a job the broker does not take raises the library's exception.
func TestPHPLibrary(t *testing.T) {
	s := newStack(t, stackOptions{
		phpBinds: []string{filepath.Join(repoRoot(t), "integration", "testdata", "php") + ":" + testScripts + ":ro"},
	})
	ch := s.adminChannel(t)

	t.Run("the messages are the caller's", func(t *testing.T) {
		const queue = "shape"
		for _, q := range []string{queue, queue + ".delay.16s"} {
			if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil { // durable, not auto-delete, not exclusive, wait
				t.Fatalf("declare %s: %v", q, err)
			}
		}
		env := map[string]string{"AMQP_QUEUE": queue}
		before := time.Now()
		id := s.enqueueOK(t, env, "form", "7")
		delayedID := s.enqueueOK(t, env, "delayed", "8", "30")

		d := getOne(t, ch, queue)
		if d.MessageId != id || d.DeliveryMode != amqp.Persistent || d.ContentType != "application/json" ||
			d.Type != "php-form" || d.Priority != 3 || d.Headers["tenant"] != "acme" || string(d.Body) != `{"number":7}` {
			t.Errorf("form job: id %q mode %d type %q content type %q priority %d headers %v body %s; want %s, persistent, php-form, application/json, 3, tenant=acme, {\"number\":7}",
				d.MessageId, d.DeliveryMode, d.Type, d.ContentType, d.Priority, d.Headers, d.Body, id)
		}
		if d.Timestamp.Before(before.Truncate(time.Second)) || d.Timestamp.After(time.Now()) {
			t.Errorf("form job: timestamp %s, want the time it was published", d.Timestamp)
		}
		// 30 s waits in the 16 s delay queue, as the caller would send it.
		d = getOne(t, ch, queue+".delay.16s")
		due, ok := d.Headers["x-fpmq-due"].(int64)
		if d.MessageId != delayedID || !ok {
			t.Fatalf("delayed job: id %q, headers %v; want %s with an int64 x-fpmq-due", d.MessageId, d.Headers, delayedID)
		}
		if wait := time.UnixMilli(due).Sub(d.Timestamp); wait < 30*time.Second || wait >= 31*time.Second {
			t.Errorf("delayed job: due %s after its timestamp, want 30s", wait)
		}
	})

	t.Run("the daemon runs a form job, a delayed one and a raw one", func(t *testing.T) {
		const rawQueue = "rawjobs"
		s.routeDaemon(t, rawQueue, map[string]string{"SCRIPT_FILENAME": misbehave, "REQUEST_BODY": "raw"})

		s.enqueueOK(t, nil, "form", "42")
		eventually(t, settleTimeout, "Processing 42 in the worker log", func() bool { return s.processed(t)[42] == 1 })

		start := time.Now()
		s.enqueueOK(t, nil, "delayed", "43", "10")
		if q := s.queue(t, jobQueue+".delay.8s"); q.Ready != 1 {
			t.Errorf("the 10 s job: %d ready in %s.delay.8s, want 1", q.Ready, jobQueue)
		}
		eventually(t, 30*time.Second, "Processing 43 in the worker log", func() bool { return s.processed(t)[43] == 1 })
		if took := time.Since(start); took < 10*time.Second {
			t.Errorf("the 10 s job ran %s after it was published", took)
		}

		id := s.enqueueOK(t, map[string]string{"AMQP_QUEUE": rawQueue}, "raw", "r1")
		eventually(t, settleTimeout, "the raw job ran", func() bool { return len(s.misbehaveRecords(t, id)) == 1 })
		rec := s.misbehaveLines(t)
		r := rec[slices.IndexFunc(rec, func(r misbehaveRecord) bool { return r.ID == id })]
		if r.Do != "raw" || r.Server["CONTENT_TYPE"] != "text/csv" || r.Server["HTTP_X_JOB_NAME"] != "php-raw" {
			t.Errorf("raw job: the worker saw do %q and %v; want raw, text/csv, php-raw", r.Do, r.Server)
		}
		if r.Input != "tag,value\nr1,1\n" {
			t.Errorf("raw job: php://input %q, want the CSV as published", r.Input)
		}
	})

	t.Run("a job the broker does not take raises", func(t *testing.T) {
		// A queue at its length limit that rejects publishes: every job is nacked.
		if _, err := ch.QueueDeclare("full", true, false, false, false, amqp.Table{ // durable, not auto-delete, not exclusive, wait
			"x-max-length": int64(0),
			"x-overflow":   "reject-publish",
		}); err != nil {
			t.Fatalf("declare full: %v", err)
		}
		for _, tc := range []struct{ queue, exception string }{
			{"nosuchqueue", "Fpmq\\ReturnedException"},
			{"full", "Fpmq\\NackedException"},
		} {
			code, out := s.enqueue(t, map[string]string{"AMQP_QUEUE": tc.queue}, "fail")
			if code != 1 || !strings.Contains(out, tc.exception+": ") || strings.Contains(out, "sent ") {
				t.Errorf("publish to %s: exit %d, want 1 with %s:\n%s", tc.queue, code, tc.exception, out)
			}
		}
		if q := s.queue(t, "full"); q.Ready != 0 {
			t.Errorf("full: %d ready, want none", q.Ready)
		}
	})
}

// getOne takes one message from queue, which must hold one.
func getOne(t *testing.T, ch *amqp.Channel, queue string) amqp.Delivery {
	t.Helper()
	d, ok, err := ch.Get(queue, true) // true: auto-ack
	if err != nil || !ok {
		t.Fatalf("get from %s: %v %v", queue, ok, err)
	}
	return d
}
