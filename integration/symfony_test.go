//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"

	"github.com/fpmq/fpmq/integration/stack"
)

// The Symfony test application (integration/frameworks/symfony) and its
// queues: the transport "async" (the PHP serializer) publishes to the
// exchange and queue "messages", "async_json" (the Symfony serializer) to
// "messages_json"; each queue has a daemon of its own, which runs the
// transport's pool script. The application's state (settings, cache, the
// log of its handlers' runs) is under /tmp/symfony-app, the pool's tmpfs.
// uuidPattern matches a random UUID in its text form, as
// Fpmq\Symfony\MessageIdMiddleware gives each message it sends.
var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

const (
	symfonyQueue     = "messages"
	symfonyJSONQueue = "messages_json"
	symfonyStateDir  = "/tmp/symfony-app"
	symfonyRunLog    = symfonyStateDir + "/runs.log"
	symfonyDeploy    = symfonyStateDir + "/deploy.php"
	// symfonyFailureQueue is the queue of the application's failure
	// transport, which Symfony would declare on its first send: fpmq's
	// dead-letter queue replaces it, so it must never appear.
	symfonyFailureQueue = "failed"
)

// TestSymfonyMessenger runs a Symfony 6.4 application's Messenger messages
// on the real RabbitMQ, daemon and php-fpm: published by the application's
// own AMQP transport with either serializer, consumed by the fpmq daemon
// on the transport's queue and run by the bridge (php/symfony) on
// Symfony's Worker, the transport's retry strategy (2 retries, 1 s, times
// 2; times 1 for async_json) deciding the retries.
func TestSymfonyMessenger(t *testing.T) {
	started := time.Now()
	s := newFrameworkStack(t, stackOptions{
		noDaemon:        true,
		reportsChildren: 4,
		rabbitEnv:       map[string]string{"RABBITMQ_QUEUES": symfonyQueue + " " + symfonyJSONQueue},
	})
	// php-fpm clears the environment: the application reads its settings
	// from a file, as from a .env file. The admin declares the transports'
	// exchanges and delay queues.
	s.symfonyShell(t, fmt.Sprintf("mkdir -p %s && printf 'MESSENGER_TRANSPORT_DSN=%%s\\n' '%s' > %s/app.env",
		symfonyStateDir, s.URL(rabbitUser), symfonyStateDir))
	// The daemons first: they declare the queues, which the transports
	// declare passive and bind to their exchanges.
	daemon := func(queue, script, maxAttempts string) *testcontainers.DockerContainer {
		return s.startDaemon(t, map[string]string{
			"AMQP_QUEUE":      queue,
			"SCRIPT_FILENAME": symfonyApp + "/public/" + script,
			"REQUEST_BODY":    "raw",
			"FASTCGI_ADDR":    "unix://" + stack.ReportsSocket,
			"CONCURRENCY":     "2",
			"MAX_ATTEMPTS":    maxAttempts,
		})
	}
	// MAX_ATTEMPTS 8 leaves 25 s to fix the broken deploy below; Symfony's
	// retry strategy decides the failures it sees, whatever the route's.
	d := daemon(symfonyQueue, "fpmq.php", "8")
	daemon(symfonyJSONQueue, "fpmq-json.php", "3")
	s.dispatchSymfony(t) // builds the application's container once, before the timed runs
	ready := time.Now()

	t.Run("a message runs once, as messenger:consume runs it", func(t *testing.T) { s.symfonyOnce(t) })
	t.Run("a custom stamp arrives intact through both serializers", func(t *testing.T) { s.symfonyStamps(t) })
	t.Run("a handler that throws twice runs three times, 1 s and 2 s apart", func(t *testing.T) { s.symfonyRetry(t) })
	t.Run("a recoverable exception runs again past max_retries", func(t *testing.T) { s.symfonyRecoverable(t) })
	t.Run("an unrecoverable exception is dead-lettered at once", func(t *testing.T) { s.symfonyUnrecoverable(t) })
	t.Run("a body that is no envelope is dead-lettered, naming what was expected", func(t *testing.T) { s.symfonyNotAnEnvelope(t) })
	t.Run("a delayed dispatch runs no earlier than due", func(t *testing.T) { s.symfonyDelayed(t) })
	t.Run("an application that cannot boot is a failed attempt and loses nothing", func(t *testing.T) { s.symfonyBroken(t, d) })

	queues, err := s.Queues(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := queues[symfonyFailureQueue]; ok {
		t.Errorf("queue %s exists: Symfony sent a message to its failure transport", symfonyFailureQueue)
	}
	t.Logf("the images (built or found), the stack and its daemons took %s; the subtests %s",
		ready.Sub(started).Round(100*time.Millisecond), time.Since(ready).Round(100*time.Millisecond))
}

// symfonyOnce checks that a message that succeeds runs once, with the
// stamps and events of messenger:consume.
func (s *testStack) symfonyOnce(t *testing.T) {
	s.dispatchSymfony(t, `{"id":"once"}`)
	run := s.awaitSymfonyRuns(t, "once", 1)[0]
	s.awaitSymfonySettled(t, symfonyQueue)
	if n := len(s.symfonyRuns(t, "once")); n != 1 {
		t.Errorf("it ran %d times, want once", n)
	}
	if run.Transport != "async" || !run.ConsumedByWorker || run.Attempt != 1 || run.Retries != 0 || !uuidPattern.MatchString(run.JobID) {
		t.Errorf("the handler saw %+v, want ReceivedStamp(async), ConsumedByWorkerStamp, attempt 1, no retry, the message id MessageIdMiddleware gave it", run)
	}
	events := s.symfonyEvents(t, "once")
	if want := "WorkerMessageReceivedEvent WorkerMessageHandledEvent"; strings.Join(events, " ") != want {
		t.Errorf("Worker events %v, want %s", events, want)
	}
	if !run.Preloaded {
		t.Error("php-fpm did not preload the handler, Runner and Worker: the pool is not as the README sets it up (config/preload.php)")
	}
}

// symfonyStamps checks that the application's own stamp, with nested
// data, arrives intact through the PHP and the Symfony serializer.
func (s *testStack) symfonyStamps(t *testing.T) {
	trace := `{"trace_id":"t-42","baggage":{"tenant":"acme","path":"a/b é"}}`
	s.dispatchSymfony(t,
		`{"id":"stamp-php","transport":"async","trace":`+trace+`}`,
		`{"id":"stamp-json","transport":"async_json","trace":`+trace+`}`)
	for id, transport := range map[string]string{"stamp-php": "async", "stamp-json": "async_json"} {
		run := s.awaitSymfonyRuns(t, id, 1)[0]
		var got, want any
		if err := json.Unmarshal(run.Trace, &got); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(trace), &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) || run.Transport != transport {
			t.Errorf("%s: the handler saw the stamp %s from transport %s, want %s from %s", id, run.Trace, run.Transport, trace, transport)
		}
	}
}

// symfonyRetry checks that the transport's retry strategy decides the
// retries: a handler that throws twice runs three times, the waits 1 s and
// 2 s; one that keeps throwing is dead-lettered at its third run, as
// max_retries 2 says, with the exception as the reason.
func (s *testStack) symfonyRetry(t *testing.T) {
	s.dispatchSymfony(t, `{"id":"flaky","behavior":"flaky","failures":2}`, `{"id":"hopeless","behavior":"flaky","failures":9}`)
	runs := s.awaitSymfonyRuns(t, "flaky", 3)
	gaps := []float64{runs[1].At - runs[0].At, runs[2].At - runs[1].At}
	t.Logf("the retries began %.3f s and %.3f s after the runs before", gaps[0], gaps[1])
	for i, want := range []float64{1, 2} {
		if gaps[i] < want || gaps[i] > want+1 {
			t.Errorf("retry %d began %.3f s after the run before, want %g s to %g s", i+1, gaps[i], want, want+1)
		}
	}
	for i, r := range runs {
		if r.Attempt != i+1 || r.Retries != i {
			t.Errorf("run %d: attempt %d with RedeliveryStamp count %d, want %d and %d", i+1, r.Attempt, r.Retries, i+1, i)
		}
	}
	dead := s.awaitDead(t, symfonyQueue, 1)[0]
	h := dead.Headers
	if h["x-fpmq-reason"] != "failed" || h["x-fpmq-attempts"] != int64(3) || h["x-fpmq-last-error"] != "RuntimeException: flaky hopeless failed at retry 2" {
		t.Errorf("dead letter headers %v, want failed at attempt 3 with the exception", h)
	}
	s.awaitSymfonySettled(t, symfonyQueue)
	if n := len(s.symfonyRuns(t, "flaky")); n != 3 {
		t.Errorf("flaky ran %d times, want 3", n)
	}
	if n := len(s.symfonyRuns(t, "hopeless")); n != 3 {
		t.Errorf("hopeless ran %d times, want 3", n)
	}
	events := strings.Join(s.symfonyEvents(t, "flaky"), " ")
	if strings.Count(events, "WorkerMessageRetriedEvent") != 2 || strings.Count(events, "WorkerMessageHandledEvent") != 1 {
		t.Errorf("Worker events %s, want two retries and one success", events)
	}
	s.noSymfonyDelayQueues(t)
}

// noSymfonyDelayQueues checks that Symfony declared none of its delay
// queues, as it would to publish a retry itself (they expire 10 s after
// their delay): the retries are the daemon's.
func (s *testStack) noSymfonyDelayQueues(t *testing.T) {
	t.Helper()
	queues, err := s.Queues(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for name := range queues {
		if strings.HasPrefix(name, "delay_") {
			t.Errorf("Symfony declared its delay queue %s: it published a retry", name)
		}
	}
}

// symfonyRecoverable checks that RecoverableMessageHandlingException runs
// the message again past the strategy's max_retries (2): three failures,
// then a success at the fourth run, 1 s apart (async_json: multiplier 1),
// on a route whose MAX_ATTEMPTS is 3.
func (s *testStack) symfonyRecoverable(t *testing.T) {
	s.dispatchSymfony(t, `{"id":"recoverable","behavior":"recoverable","failures":3,"transport":"async_json"}`)
	runs := s.awaitSymfonyRuns(t, "recoverable", 4)
	s.awaitSymfonySettled(t, symfonyJSONQueue)
	for i := 1; i < len(runs); i++ {
		if gap := runs[i].At - runs[i-1].At; gap < 1 || gap > 2 {
			t.Errorf("run %d began %.3f s after the run before, want 1 s to 2 s", i+1, gap)
		}
	}
	if n := len(s.symfonyRuns(t, "recoverable")); n != 4 {
		t.Errorf("it ran %d times, want 4", n)
	}
	if n := s.queue(t, symfonyJSONQueue+".dead").Ready; n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
	s.noSymfonyDelayQueues(t)
}

// symfonyUnrecoverable checks that UnrecoverableMessageHandlingException
// dead-letters the message at its first run, with the exception as the
// reason, and that Symfony sends nothing to its failure transport.
func (s *testStack) symfonyUnrecoverable(t *testing.T) {
	s.dispatchSymfony(t, `{"id":"declined","behavior":"unrecoverable"}`)
	dead := s.awaitDead(t, symfonyQueue, 1)[0]
	h := dead.Headers
	const want = `Symfony\Component\Messenger\Exception\UnrecoverableMessageHandlingException: card declined for declined`
	if h["x-fpmq-reason"] != "failed" || h["x-fpmq-attempts"] != int64(1) || h["x-fpmq-last-error"] != want {
		t.Errorf("dead letter headers %v, want failed at attempt 1 with %q", h, want)
	}
	if n := len(s.symfonyRuns(t, "declined")); n != 1 {
		t.Errorf("it ran %d times, want once", n)
	}
	events := strings.Join(s.symfonyEvents(t, "declined"), " ")
	if !strings.Contains(events, "WorkerMessageFailedEvent(final)") {
		t.Errorf("Worker events %s, want a failure not to be retried", events)
	}
}

// symfonyNotAnEnvelope checks that a body the transport's serializer cannot
// decode is dead-lettered at once, the reason naming the envelope and the
// serializer expected.
func (s *testStack) symfonyNotAnEnvelope(t *testing.T) {
	for queue, serializer := range map[string]string{
		symfonyQueue:     `Symfony\Component\Messenger\Transport\Serialization\PhpSerializer`,
		symfonyJSONQueue: `Symfony\Component\Messenger\Transport\Serialization\Serializer`,
	} {
		msg := stack.Job("not-an-envelope-"+queue, []byte(`{"to":"a@example.com"}`))
		s.publishMessages(t, queue, msg)
		h := s.awaitDead(t, queue, 1)[0].Headers
		reason, _ := h["x-fpmq-last-error"].(string)
		want := "not a Symfony Messenger envelope of transport "
		if h["x-fpmq-reason"] != "failed" || !strings.HasPrefix(reason, want) || !strings.Contains(reason, serializer) {
			t.Errorf("%s: dead letter headers %v, want failed with %q... naming %s", queue, h, want, serializer)
		}
		t.Logf("%s: %s", queue, reason)
	}
}

// symfonyDelayed checks that a message dispatched with a DelayStamp, which
// Symfony's AMQP transport holds in a delay queue of its own that
// dead-letters it into the transport's exchange when due, runs through
// fpmq no earlier than due.
func (s *testStack) symfonyDelayed(t *testing.T) {
	s.dispatchSymfony(t, `{"id":"delayed","delay_ms":3000}`)
	run := s.awaitSymfonyRuns(t, "delayed", 1)[0]
	late := run.At - run.DispatchedAt
	t.Logf("dispatched with a 3 s delay, it ran %.3f s later", late)
	if late < 3 || late > 5 {
		t.Errorf("it ran %.3f s after its dispatch, want 3 s to 5 s", late)
	}
	if q := s.queue(t, "delay_messages__3000_delay"); !q.Exists {
		t.Error("Symfony's delay queue delay_messages__3000_delay does not exist: the delay went another way")
	}
}

// symfonyBroken checks that a deploy that breaks the application's boot (a
// PHP parse error) makes each run a failed attempt, retried by fpmq, and
// that the message runs once the deploy is fixed.
func (s *testStack) symfonyBroken(t *testing.T, d *testcontainers.DockerContainer) {
	// Dispatched while the application boots, run after the deploy broke it.
	s.dispatchSymfony(t, `{"id":"after-deploy","delay_ms":2500}`)
	s.symfonyShell(t, fmt.Sprintf("printf '<?php this is not php\\n' > %s", symfonyDeploy))
	eventually(t, settleTimeout, "a failed attempt of the broken application", func() bool {
		return strings.Contains(containerLogs(t, d), "PHP Parse error")
	})
	s.symfonyShell(t, "rm "+symfonyDeploy)
	run := s.awaitSymfonyRuns(t, "after-deploy", 1)[0]
	s.awaitSymfonySettled(t, symfonyQueue)
	if run.Attempt < 2 {
		t.Errorf("it ran at attempt %d, want a later one than the broken run", run.Attempt)
	}
	if n := len(s.symfonyRuns(t, "after-deploy")); n != 1 {
		t.Errorf("it ran %d times, want once", n)
	}
	if n := s.queue(t, symfonyQueue+".dead").Ready; n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
}

// symfonyRecord is one line of the application's run log: a run of its
// handler, or a Worker event.
type symfonyRecord struct {
	Kind  string  `json:"kind"` // "run" or "event"
	ID    string  `json:"id"`
	At    float64 `json:"at"` // Unix seconds
	Event string  `json:"event"`
	// WillRetry is the WorkerMessageFailedEvent's decision.
	WillRetry        *bool           `json:"will_retry"`
	DispatchedAt     float64         `json:"dispatched_at"`
	Transport        string          `json:"transport"` // the ReceivedStamp's transport
	ConsumedByWorker bool            `json:"consumed_by_worker"`
	Retries          int             `json:"retries"` // RedeliveryStamp's count
	Trace            json.RawMessage `json:"trace"`   // the TraceStamp
	JobID            string          `json:"job_id"`  // FpmqReceivedStamp's
	Attempt          int             `json:"attempt"`
	// Preloaded says php-fpm preloaded the handler, the bridge's Runner and
	// Messenger's Worker (RunLog::preloaded).
	Preloaded bool `json:"preloaded"`
}

// symfonyRecords returns the run log's records of the message id, in order.
func (s *testStack) symfonyRecords(t *testing.T, id string) []symfonyRecord {
	t.Helper()
	// The log is on the pool's tmpfs, which docker cp cannot read.
	code, out := execIn(t, s.PHP, "sh", "-c", "cat "+symfonyRunLog+" 2>/dev/null || true")
	if code != 0 {
		t.Fatalf("read %s: exit %d: %s", symfonyRunLog, code, out)
	}
	var records []symfonyRecord
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var r symfonyRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%s line %q: %v", symfonyRunLog, line, err)
		}
		if r.ID == id {
			records = append(records, r)
		}
	}
	return records
}

// symfonyRuns returns the handler's runs of the message id, in order.
func (s *testStack) symfonyRuns(t *testing.T, id string) []symfonyRecord {
	t.Helper()
	var runs []symfonyRecord
	for _, r := range s.symfonyRecords(t, id) {
		if r.Kind == "run" {
			runs = append(runs, r)
		}
	}
	return runs
}

// symfonyEvents returns the Worker events of the message id, in order; a
// failure says whether it will be retried: WorkerMessageFailedEvent(retry)
// or WorkerMessageFailedEvent(final).
func (s *testStack) symfonyEvents(t *testing.T, id string) []string {
	t.Helper()
	var events []string
	for _, r := range s.symfonyRecords(t, id) {
		switch {
		case r.Kind != "event":
		case r.WillRetry != nil && *r.WillRetry:
			events = append(events, r.Event+"(retry)")
		case r.WillRetry != nil:
			events = append(events, r.Event+"(final)")
		default:
			events = append(events, r.Event)
		}
	}
	return events
}

// awaitSymfonyRuns waits until the handler ran the message id n times and
// returns its runs.
func (s *testStack) awaitSymfonyRuns(t *testing.T, id string, n int) []symfonyRecord {
	t.Helper()
	var runs []symfonyRecord
	eventually(t, settleTimeout, fmt.Sprintf("%s ran %d times", id, n), func() bool {
		runs = s.symfonyRuns(t, id)
		return len(runs) >= n
	})
	return runs
}

// awaitSymfonySettled waits until queue holds no message, ready or
// unacknowledged: every delivery settled.
func (s *testStack) awaitSymfonySettled(t *testing.T, queue string) {
	t.Helper()
	eventually(t, settleTimeout, queue+" settled", func() bool {
		q := s.queue(t, queue)
		return q.Ready == 0 && q.Unacked == 0
	})
}

// dispatchSymfony dispatches messages on the application's bus from its
// command line (bin/dispatch.php), which sends them through their AMQP
// transport: each spec a JSON object (see the script).
func (s *testStack) dispatchSymfony(t *testing.T, specs ...string) {
	t.Helper()
	code, out := execIn(t, s.PHP, append([]string{"php", symfonyApp + "/bin/dispatch.php"}, specs...)...)
	if code != 0 || strings.Count(out, "dispatched ") != len(specs) {
		t.Fatalf("dispatch %v: exit %d:\n%s", specs, code, out)
	}
}

// symfonyShell runs a shell command in the php-fpm container, as the pool's
// user.
func (s *testStack) symfonyShell(t *testing.T, command string) {
	t.Helper()
	if code, out := execIn(t, s.PHP, "sh", "-c", command); code != 0 {
		t.Fatalf("%s: exit %d: %s", command, code, out)
	}
}
