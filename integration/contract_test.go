//go:build integration

package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/testcontainers/testcontainers-go"

	"github.com/fpmq/fpmq/integration/stack"
)

// The worker-contract test script (testdata/php/contract.php) and its log.
const (
	contractScript = testScripts + "/contract.php"
	contractLog    = stack.WorkerLogDir + "/contract.log"
)

// TestWorkerContract runs the worker contract on the real RabbitMQ, daemon
// and php-fpm, with one route whose MAX_ATTEMPTS is 2: what the script sees
// (every header losslessly, a stable identity, its limit of attempts) and
// what it may answer (Fpmq-Retry-In, Fpmq-Fail, Fpmq-Max-Attempts).
func TestWorkerContract(t *testing.T) {
	s := newStack(t, stackOptions{
		noDaemon: true,
		phpBinds: []string{filepath.Join(repoRoot(t), "integration", "testdata", "php") + ":" + testScripts + ":ro"},
	})
	const queue = "contract"
	d := s.routeDaemon(t, queue, map[string]string{"SCRIPT_FILENAME": contractScript, "MAX_ATTEMPTS": "2"})

	t.Run("every header and property arrives losslessly", func(t *testing.T) { s.contractLossless(t, queue) })
	t.Run("Fpmq-Retry-In runs the job again after its wait, as a counted attempt", func(t *testing.T) { s.contractRetryIn(t, d, queue) })
	t.Run("Fpmq-Fail dead-letters the job at once with its reason", func(t *testing.T) { s.contractFail(t, queue) })
	t.Run("Fpmq-Max-Attempts gives a job more attempts than the route's", func(t *testing.T) { s.contractMaxAttempts(t, queue) })
	t.Run("a message without message id keeps one identity", func(t *testing.T) { s.contractIdentity(t, queue) })
}

// contractLossless publishes a job with nested headers of every AMQP type
// and checks that the script sees them, and the properties, losslessly.
func (s *testStack) contractLossless(t *testing.T, queue string) {
	msg := stack.Job("lossless", []byte(`{"job":"lossless"}`))
	msg.Type, msg.CorrelationId, msg.AppId = "send-mail", "c-1", "shop"
	msg.Timestamp = time.Unix(1764434000, 0)
	msg.Headers = amqp.Table{
		"x-trace": "abc",
		"laravel": amqp.Table{"attempts": int32(2), "job": amqp.Table{"uuid": "u-1", "tags": []any{"a", int64(9), true, nil}}},
		"bytes":   []byte{0, 1, 0xff},
		"when":    time.Unix(1700000000, 0),
		"price":   amqp.Decimal{Scale: 2, Value: 1234},
		"ratio":   0.25,
		"small":   int8(-3),
		"short":   int16(300),
		"flag":    false,
		"nothing": nil,
		"list":    []any{[]any{int32(1), int32(2)}, amqp.Table{"k": "v"}},
	}
	s.publishMessages(t, queue, msg)
	run := s.awaitContractRuns(t, "lossless", 1)[0]
	var got struct {
		Properties map[string]any  `json:"properties"`
		Headers    json.RawMessage `json:"headers"`
	}
	if err := json.Unmarshal([]byte(run.Message), &got); err != nil {
		t.Fatalf("HTTP_X_FPMQ_MESSAGE %q: %v", run.Message, err)
	}
	const want = `{"bytes":{"bytes":"AAH/"},"flag":false,"laravel":{"attempts":2,"job":{"tags":["a",9,true,null],"uuid":"u-1"}},` +
		`"list":[[1,2],{"k":"v"}],"nothing":null,"price":{"decimal":"12.34"},"ratio":0.25,"short":300,"small":-3,` +
		`"when":{"timestamp":1700000000},"x-trace":"abc"}`
	if string(got.Headers) != want {
		t.Errorf("headers arrived as\n%s\nwant\n%s", got.Headers, want)
	}
	p := got.Properties
	if p["message_id"] != "lossless" || p["type"] != "send-mail" || p["correlation_id"] != "c-1" || p["app_id"] != "shop" ||
		p["content_type"] != "application/json" || p["delivery_mode"] != 2.0 || p["timestamp"] != 1764434000.0 {
		t.Errorf("properties arrived as %v", p)
	}
	// PHP reads it too, with its own types.
	var decoded struct {
		Headers map[string]json.RawMessage `json:"headers"`
	}
	err := json.Unmarshal(run.Decoded, &decoded)
	laravel := string(decoded.Headers["laravel"])
	if err != nil || run.DecodeError != "" || laravel != `{"attempts":2,"job":{"tags":["a",9,true,null],"uuid":"u-1"}}` || run.Omitted != "" {
		t.Errorf("PHP decoded %s: %v (error %q, omitted %q)", run.Decoded, err, run.DecodeError, run.Omitted)
	}
	if ratio := string(decoded.Headers["ratio"]); ratio != "0.25" {
		t.Errorf("PHP decoded ratio as %s", ratio)
	}
	if run.ID != "lossless" || run.MaxAttempts != "2" {
		t.Errorf("the script saw id %q and max attempts %q, want lossless and 2", run.ID, run.MaxAttempts)
	}
}

// contractRetryIn checks that Fpmq-Retry-In: 2 runs the job again no sooner
// than 2 s later (within a second), as a counted attempt.
func (s *testStack) contractRetryIn(t *testing.T, d *testcontainers.DockerContainer, queue string) {
	before := scrape(t, d)[series("fpmq_jobs_retried_total", queue)]
	s.publishMessages(t, queue, stack.Job("retry", []byte(`{"job":"retry","retry_in":"2"}`)))
	runs := s.awaitContractRuns(t, "retry", 2)
	gap := runs[1].At - runs[0].At
	t.Logf("Fpmq-Retry-In: 2: the second run began %.3f s after the first", gap)
	if gap < 2 || gap > 3 {
		t.Errorf("the second run began %.3f s after the first, want 2 s to 3 s", gap)
	}
	if runs[0].Attempt != 1 || runs[1].Attempt != 2 {
		t.Errorf("attempts %d then %d, want 1 then 2", runs[0].Attempt, runs[1].Attempt)
	}
	eventually(t, settleTimeout, "the retry counted and the job done", func() bool {
		m := scrape(t, d)
		q := s.queue(t, queue)
		return m[series("fpmq_jobs_retried_total", queue)] == before+1 && q.Ready == 0 && q.Unacked == 0
	})
	if n := s.queue(t, queue+".dead").Ready; n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
}

// contractFail checks that Fpmq-Fail dead-letters the job at once with
// reason failed and its text.
func (s *testStack) contractFail(t *testing.T, queue string) {
	s.publishMessages(t, queue, stack.Job("fail", []byte(`{"job":"fail","fail":"no such user 42"}`)))
	dead := s.awaitDead(t, queue, 1)[0]
	h := dead.Headers
	if dead.MessageId != "fail" || h["x-fpmq-reason"] != "failed" || h["x-fpmq-last-error"] != "no such user 42" || h["x-fpmq-attempts"] != int64(1) {
		t.Errorf("dead letter %s with headers %v, want failed after 1 attempt with the text", dead.MessageId, h)
	}
	if runs := s.contractRuns(t, "fail"); len(runs) != 1 {
		t.Errorf("the job ran %d times, want once", len(runs))
	}
}

// contractMaxAttempts checks that Fpmq-Max-Attempts: 7 lets a job run 7
// times on a route whose MAX_ATTEMPTS is 2.
func (s *testStack) contractMaxAttempts(t *testing.T, queue string) {
	s.publishMessages(t, queue, stack.Job("max", []byte(`{"job":"max","max_attempts":"7","status":"500"}`)))
	dead := s.awaitDead(t, queue, 1)[0]
	h := dead.Headers
	if h["x-fpmq-reason"] != "attempts-exhausted" || h["x-fpmq-attempts"] != int64(7) || h["x-fpmq-max-attempts"] != int64(7) {
		t.Errorf("dead letter headers %v, want attempts-exhausted after 7 attempts of 7", h)
	}
	runs := s.contractRuns(t, "max")
	if len(runs) != 7 {
		t.Fatalf("the job ran %d times, want 7", len(runs))
	}
	for i, r := range runs {
		want := "7"
		if i == 0 {
			want = "2" // the route's, until the script's first answer
		}
		if r.Attempt != i+1 || r.MaxAttempts != want {
			t.Errorf("run %d: attempt %d of %q, want %d of %q", i+1, r.Attempt, r.MaxAttempts, i+1, want)
		}
	}
}

// contractIdentity checks that a message without message id keeps one
// identity across its attempts and into the dead-letter queue.
func (s *testStack) contractIdentity(t *testing.T, queue string) {
	body := []byte(`{"job":"noid","status":"500"}`)
	sum := sha256.Sum256(body)
	id := "sha256:" + hex.EncodeToString(sum[:])
	s.publishMessages(t, queue, stack.Job("", body))
	dead := s.awaitDead(t, queue, 1)[0]
	if dead.MessageId != id || dead.Headers["x-fpmq-attempts"] != int64(2) {
		t.Errorf("dead letter %q after %v attempts, want %q after 2", dead.MessageId, dead.Headers["x-fpmq-attempts"], id)
	}
	runs := s.contractRuns(t, "noid")
	if len(runs) != 2 {
		t.Fatalf("the job ran %d times, want 2", len(runs))
	}
	for _, r := range runs {
		if r.ID != id {
			t.Errorf("attempt %d saw id %q, want %q", r.Attempt, r.ID, id)
		}
	}
}

// contractRecord is one run of contract.php, as it logged it.
type contractRecord struct {
	Job         string  `json:"job"`
	ID          string  `json:"id"` // HTTP_X_MESSAGE_ID
	Attempt     int     `json:"attempt"`
	MaxAttempts string  `json:"max_attempts"` // HTTP_X_MAX_ATTEMPTS
	At          float64 `json:"at"`           // when the run started, Unix seconds
	Message     string  `json:"message"`      // HTTP_X_FPMQ_MESSAGE as received
	// Decoded is PHP's json_decode of Message, as PHP encodes it again
	// (an empty object comes back as []).
	Decoded     json.RawMessage `json:"decoded"`
	DecodeError string          `json:"decode_error"`
	Omitted     string          `json:"omitted"` // HTTP_X_FPMQ_OMITTED_HEADERS
}

// contractRuns returns the runs of contract.php of the named job, in order.
func (s *testStack) contractRuns(t *testing.T, job string) []contractRecord {
	t.Helper()
	r, err := s.PHP.CopyFileFromContainer(context.Background(), contractLog)
	if err != nil {
		return nil // not written yet
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	var runs []contractRecord
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec contractRecord
		if line == "" {
			continue
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("contract.log line %q: %v", line, err)
		}
		if rec.Job == job {
			runs = append(runs, rec)
		}
	}
	return runs
}

// awaitContractRuns waits until the named job ran n times and returns its
// runs.
func (s *testStack) awaitContractRuns(t *testing.T, job string, n int) []contractRecord {
	t.Helper()
	var runs []contractRecord
	eventually(t, settleTimeout, fmt.Sprintf("%s ran %d times", job, n), func() bool {
		runs = s.contractRuns(t, job)
		return len(runs) >= n
	})
	return runs
}
