package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/rs/zerolog"

	"github.com/fpmq/fpmq/services/internal/broker"
	"github.com/fpmq/fpmq/services/internal/outcome"
)

func TestIdentity(t *testing.T) {
	hashed := identity(amqp.Delivery{Body: []byte(`{"number":1}`)})
	if !strings.HasPrefix(hashed, "sha256:") || len(hashed) != len("sha256:")+64 || strings.ToLower(hashed) != hashed {
		t.Fatalf("identity of a bare body = %q, want sha256: and 64 lowercase hex digits", hashed)
	}
	for _, tc := range []struct {
		name string
		m    amqp.Delivery
		want string
	}{
		{"message id", amqp.Delivery{MessageId: "m-1", CorrelationId: "c-1", Body: []byte("x")}, "m-1"},
		{"correlation id", amqp.Delivery{CorrelationId: "c-1", Body: []byte("x")}, "c-1"},
		{"body", amqp.Delivery{Body: []byte(`{"number":1}`)}, hashed},
		{"empty body", amqp.Delivery{}, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"another body", amqp.Delivery{Body: []byte(`{"number":2}`)}, ""},
	} {
		got := identity(tc.m)
		if tc.want == "" {
			if got == hashed || !strings.HasPrefix(got, "sha256:") {
				t.Errorf("%s: %q, want a hash of its own", tc.name, got)
			}
			continue
		}
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestOwnLimit(t *testing.T) {
	for _, tc := range []struct {
		h           amqp.Table
		want        int
		ok, present bool
	}{
		{nil, 0, false, false},
		{amqp.Table{outcome.HeaderMaxAttempts: int64(7)}, 7, true, true},
		{amqp.Table{outcome.HeaderMaxAttempts: int16(1)}, 1, true, true},
		{amqp.Table{outcome.HeaderMaxAttempts: int32(1000)}, 1000, true, true},
		{amqp.Table{outcome.HeaderMaxAttempts: int64(1001)}, 0, false, true},
		{amqp.Table{outcome.HeaderMaxAttempts: int64(0)}, 0, false, true},
		{amqp.Table{outcome.HeaderMaxAttempts: "7"}, 0, false, true},
	} {
		n, ok, present := ownLimit(tc.h)
		if n != tc.want || ok != tc.ok || present != tc.present {
			t.Errorf("ownLimit(%v) = %d %v %v, want %d %v %v", tc.h, n, ok, present, tc.want, tc.ok, tc.present)
		}
	}
}

func TestLimitAfter(t *testing.T) {
	for _, tc := range []struct {
		current, attempt, asked int
		retry                   bool
		want                    int
	}{
		{3, 1, 0, false, 3}, // nothing asked
		{3, 1, 0, true, 3},  // Retry-In alone does not add attempts
		{3, 2, 7, false, 7}, // more
		{7, 2, 2, false, 2}, // fewer, none spent beyond
		{3, 3, 2, false, 3}, // never fewer than already ran
		{3, 3, 2, true, 4},  // plus the one asked for
		{3, 3, 1, true, 4},  //
		{3, 5, 1000, true, 1000},
	} {
		if got := limitAfter(tc.current, tc.attempt, tc.asked, tc.retry); got != tc.want {
			t.Errorf("limitAfter(%d, %d, %d, %v) = %d, want %d", tc.current, tc.attempt, tc.asked, tc.retry, got, tc.want)
		}
	}
}

// TestReadDirectivesSaysWhatWasWrong: a malformed value is reported with
// its header, its value and what it should have been.
func TestReadDirectivesSaysWhatWasWrong(t *testing.T) {
	d, bad := readDirectives(answeredWith(200, "Fpmq-Retry-In", "later", "Fpmq-Max-Attempts", "0").Header, 168*time.Hour)
	if d.retry || d.maxAttempts != 0 || d.fail {
		t.Errorf("directives %+v from malformed values, want none", d)
	}
	want := []malformedValue{
		{"Fpmq-Retry-In", "later", "whole seconds from 0 to 604800 (DELAY_MAX)"},
		{"Fpmq-Max-Attempts", "0", "a whole number from 1 to 1000"},
	}
	if fmt.Sprint(bad) != fmt.Sprint(want) {
		t.Errorf("malformed %+v, want %+v", bad, want)
	}
}

// TestSettleAnswers settles the verdicts of the worker's Fpmq-* answers with
// no FastCGI server: where the copy goes, its attempt, due time and limit
// of attempts, and the dead letter's reason.
func TestSettleAnswers(t *testing.T) {
	in := func(s int) verdict {
		return verdict{kind: failAttempt, err: errors.New("asked"), retry: true, retryIn: time.Duration(s) * time.Second}
	}
	tests := []struct {
		name      string
		v         verdict
		attempt   int
		headers   amqp.Table
		route     int // the route's MAX_ATTEMPTS; 3 when 0
		want      outcome.Outcome
		reason    string
		queue     string
		due       time.Duration // the copy's due time from now; 0 for none
		nextLimit int64         // the copy's x-fpmq-max-attempts; 0 for none
	}{
		{name: "Retry-In 2", v: in(2), attempt: 1, want: outcome.Retried, queue: "jobs.delay.2s", due: 2 * time.Second},
		{name: "Retry-In 1", v: in(1), attempt: 1, want: outcome.Retried, queue: "jobs.delay.1s", due: time.Second},
		{name: "Retry-In 5: the largest bucket below", v: in(5), attempt: 2, want: outcome.Retried, queue: "jobs.delay.4s", due: 5 * time.Second},
		{name: "Retry-In 0: the tail of the job queue", v: in(0), attempt: 1, want: outcome.Retried, queue: "jobs"},
		{name: "Retry-In on the last attempt", v: in(2), attempt: 3, want: outcome.DeadLettered, reason: outcome.ReasonExhausted, queue: "jobs.dead"},
		{name: "Fpmq-Fail", v: verdict{kind: deadLetterNow, reason: outcome.ReasonFailed, err: errors.New("no such user")}, attempt: 1,
			want: outcome.DeadLettered, reason: outcome.ReasonFailed, queue: "jobs.dead"},
		{name: "more attempts on the last", v: verdict{kind: failAttempt, err: errors.New("500"), maxAttempts: 7}, attempt: 3,
			want: outcome.Retried, queue: "jobs.retry.2s", nextLimit: 7},
		{name: "more attempts, asked wait", v: verdict{kind: failAttempt, err: errors.New("500"), maxAttempts: 7, retry: true, retryIn: 2 * time.Second}, attempt: 3,
			want: outcome.Retried, queue: "jobs.delay.2s", due: 2 * time.Second, nextLimit: 7},
		{name: "fewer attempts than ran", v: verdict{kind: failAttempt, err: errors.New("500"), maxAttempts: 1}, attempt: 2,
			want: outcome.DeadLettered, reason: outcome.ReasonExhausted, queue: "jobs.dead", nextLimit: 2},
		{name: "fewer attempts, but one asked for", v: verdict{kind: failAttempt, err: errors.New("500"), maxAttempts: 1, retry: true, retryIn: time.Second}, attempt: 2,
			want: outcome.Retried, queue: "jobs.delay.1s", due: time.Second, nextLimit: 3},
		{name: "the job's own limit, from its header", v: verdict{kind: failAttempt, err: errors.New("500")}, attempt: 5,
			headers: amqp.Table{outcome.HeaderMaxAttempts: int64(7)}, want: outcome.Retried, queue: "jobs.retry.2s", nextLimit: 7},
		{name: "the job's own limit, spent", v: verdict{kind: failAttempt, err: errors.New("500")}, attempt: 7,
			headers: amqp.Table{outcome.HeaderMaxAttempts: int64(7)}, want: outcome.DeadLettered, reason: outcome.ReasonExhausted, queue: "jobs.dead", nextLimit: 7},
		{name: "a malformed own limit is the route's", v: verdict{kind: failAttempt, err: errors.New("500")}, attempt: 3,
			headers: amqp.Table{outcome.HeaderMaxAttempts: "7"}, want: outcome.DeadLettered, reason: outcome.ReasonExhausted, queue: "jobs.dead"},
		{name: "a route with no retry queue", v: verdict{kind: failAttempt, err: errors.New("500"), maxAttempts: 3}, attempt: 1, route: 1,
			want: outcome.Retried, queue: "jobs.delay.1s", due: time.Second, nextLimit: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topo, route := topology, 3
			if tc.route != 0 {
				route = tc.route
				topo.RetryDelays = topo.RetryDelays[:route-1]
			}
			d := New(nil, nil, Config{Script: "/app/worker.php", MaxAttempts: route, Topology: topo}, zerolog.Nop())
			m, ack := delivery(`{"number":1}`, tc.headers)
			pub := &publisher{}
			res := outcome.Result{Attempt: tc.attempt, Ran: true, Status: 200, MaxAttempts: d.ownLimit(m)}
			before := time.Now()
			d.settleVerdict(context.Background(), m, pub, tc.v, &res)
			if res.Outcome != tc.want || res.Reason != tc.reason {
				t.Errorf("outcome %s reason %q, want %s %q", res.Outcome, res.Reason, tc.want, tc.reason)
			}
			if len(ack.settled) != 1 || ack.settled[0] != "ack" || len(pub.sent) != 1 || pub.sent[0].queue != tc.queue {
				t.Fatalf("settled %v, published %+v; want an ack and one copy to %s", ack.settled, pub.sent, tc.queue)
			}
			c := pub.sent[0].msg
			if tc.want == outcome.Retried && c.Headers[outcome.HeaderAttempt] != int64(tc.attempt+1) {
				t.Errorf("copy headers %v, want attempt %d", c.Headers, tc.attempt+1)
			}
			checkDue(t, c, before, tc.due)
			if got, _ := outcome.Int(c.Headers[outcome.HeaderMaxAttempts]); got != tc.nextLimit {
				t.Errorf("copy's %s = %v, want %d", outcome.HeaderMaxAttempts, c.Headers[outcome.HeaderMaxAttempts], tc.nextLimit)
			}
			if tc.v.retry && c.Expiration != "" {
				t.Errorf("a copy through the delay queues expires on its own: %q", c.Expiration)
			}
		})
	}
}

// checkDue fails unless c's due time is wait after before (within the
// settling's own time), or c has none when wait is 0.
func checkDue(t *testing.T, c amqp.Publishing, before time.Time, wait time.Duration) {
	t.Helper()
	due, ok := outcome.Due(c.Headers[outcome.HeaderDue])
	switch {
	case wait == 0 && ok:
		t.Errorf("copy due at %s, want no due time", due)
	case wait == 0:
	case !ok:
		t.Errorf("copy has no due time, want one %s ahead", wait)
	case due.Before(before.Add(wait).Truncate(time.Millisecond)) || due.After(time.Now().Add(wait)):
		t.Errorf("copy due %s after settling began, want %s", due.Sub(before), wait)
	}
}

// answerWith answers with status and the CGI headers of kv, name then
// value.
func answerWith(status int, kv ...string) func(fpmRequest) fpmAnswer {
	return func(fpmRequest) fpmAnswer {
		head := fmt.Sprintf("Status: %d\r\nContent-type: text/html\r\n", status)
		for i := 0; i < len(kv); i += 2 {
			head += kv[i] + ": " + kv[i+1] + "\r\n"
		}
		return fpmAnswer{stdout: head + "\r\nbody"}
	}
}

// The worker's answers through php-fpm's protocol: each settles the job as
// the contract says, and a malformed one is logged with the message id.
func TestAnswersThroughPHPFPM(t *testing.T) {
	t.Run("Fpmq-Retry-In", func(t *testing.T) {
		addr, _ := fakeFPM(t, answerWith(200, "Fpmq-Retry-In", "2"))
		d := newDispatcher(t, addr, &bytes.Buffer{})
		pub := &publisher{}
		before := time.Now()
		res := d.Handle(context.Background(), must(delivery(`{"number":1}`, nil)), pub)
		if res.Outcome != outcome.Retried || !res.RetryAsked || res.RetryIn != 2*time.Second || len(pub.sent) != 1 || pub.sent[0].queue != "jobs.delay.2s" {
			t.Fatalf("result %+v, sent %+v; want retried through jobs.delay.2s", res, pub.sent)
		}
		checkDue(t, pub.sent[0].msg, before, 2*time.Second)
	})
	t.Run("Fpmq-Fail", func(t *testing.T) {
		addr, _ := fakeFPM(t, answerWith(200, "Fpmq-Fail", "Ungültige Adresse: a@b"))
		d := newDispatcher(t, addr, &bytes.Buffer{})
		pub := &publisher{}
		res := d.Handle(context.Background(), must(delivery(`{"number":1}`, nil)), pub)
		if res.Outcome != outcome.DeadLettered || res.Reason != outcome.ReasonFailed || len(pub.sent) != 1 {
			t.Fatalf("result %+v, want dead-lettered as failed", res)
		}
		h := pub.sent[0].msg.Headers
		if h[outcome.HeaderReason] != "failed" || h[outcome.HeaderLastError] != "Ungültige Adresse: a@b" || h[outcome.HeaderAttempts] != int64(1) {
			t.Errorf("dead letter headers %v", h)
		}
	})
	t.Run("Fpmq-Max-Attempts", func(t *testing.T) {
		addr, requests := fakeFPM(t, answerWith(500, "Fpmq-Max-Attempts", "7"))
		d := newDispatcher(t, addr, &bytes.Buffer{})
		pub := &publisher{}
		res := d.Handle(context.Background(), must(delivery(`{"number":1}`, amqp.Table{outcome.HeaderAttempt: int64(3)})), pub)
		if res.Outcome != outcome.Retried || res.MaxAttempts != 7 || pub.sent[0].msg.Headers[outcome.HeaderMaxAttempts] != int64(7) {
			t.Fatalf("attempt 3 of a route's 3: %+v, copy %v; want retried with 7 attempts", res, pub.sent[0].msg.Headers)
		}
		next := amqp.Delivery{Acknowledger: &acknowledger{}, MessageId: "m-1", Body: []byte(`{"number":1}`), Headers: pub.sent[0].msg.Headers}
		res = d.Handle(context.Background(), next, pub)
		if res.Outcome != outcome.Retried || requests()[1].params["HTTP_X_MAX_ATTEMPTS"] != "7" || requests()[1].params["HTTP_X_ATTEMPT"] != "4" {
			t.Errorf("attempt 4: %+v, params %v", res, requests()[1].params)
		}
	})
	t.Run("malformed values", func(t *testing.T) {
		addr, _ := fakeFPM(t, answerWith(204, "Fpmq-Retry-In", "soon", "Fpmq-Max-Attempts", "9999"))
		var log bytes.Buffer
		d := newDispatcher(t, addr, &log)
		res := d.Handle(context.Background(), must(delivery(`{"number":1}`, nil)), &publisher{})
		if res.Outcome != outcome.Succeeded {
			t.Errorf("result %+v, want the 204 to stand", res)
		}
		for _, want := range []string{`"header":"Fpmq-Retry-In","value":"soon"`, `"header":"Fpmq-Max-Attempts","value":"9999"`} {
			if !strings.Contains(log.String(), want) || strings.Count(log.String(), `"message_id":"m-1"`) < 3 {
				t.Errorf("log lacks %s with the message id:\n%s", want, log.String())
			}
		}
	})
}

// The script sees its limit of attempts and the whole message, nested
// headers and all, besides the scalar headers.
func TestContractParams(t *testing.T) {
	addr, requests := fakeFPM(t, answerStatus(0, ""))
	d := newDispatcher(t, addr, &bytes.Buffer{})
	m, _ := delivery(`{"number":1}`, amqp.Table{
		"tenant":  "acme",
		"laravel": amqp.Table{"attempts": int32(2), "tags": []any{"a", int64(1), amqp.Table{"b": nil}}},
	})
	m.Type = "send-mail"
	d.Handle(context.Background(), m, &publisher{})
	p := requests()[0].params
	if p["HTTP_X_MAX_ATTEMPTS"] != "3" || p["HTTP_X_HEADER_TENANT"] != "acme" {
		t.Errorf("params %v", p)
	}
	var got struct {
		Properties map[string]any `json:"properties"`
		Headers    map[string]any `json:"headers"`
	}
	if err := json.Unmarshal([]byte(p[messageParam]), &got); err != nil {
		t.Fatalf("%s = %q: %v", messageParam, p[messageParam], err)
	}
	laravel, _ := json.Marshal(got.Headers["laravel"])
	if string(laravel) != `{"attempts":2,"tags":["a",1,{"b":null}]}` || got.Headers["tenant"] != "acme" {
		t.Errorf("headers arrived as %v", got.Headers)
	}
	if got.Properties["type"] != "send-mail" || got.Properties["message_id"] != "m-1" || got.Properties["timestamp"] != 1700000000.0 {
		t.Errorf("properties arrived as %v", got.Properties)
	}

	m, _ = delivery(`{"number":1}`, amqp.Table{outcome.HeaderMaxAttempts: int16(9)})
	d.Handle(context.Background(), m, &publisher{})
	if got := requests()[1].params["HTTP_X_MAX_ATTEMPTS"]; got != "9" {
		t.Errorf("HTTP_X_MAX_ATTEMPTS = %q for a job with its own limit of 9", got)
	}
}

// A message without a message id keeps one identity: the worker sees it,
// and every copy carries it as its message id, across its attempts, into
// the delay and dead-letter queues and back to its queue.
func TestIdentityAcrossCopies(t *testing.T) {
	addr, requests := fakeFPM(t, answerStatus(500, ""))
	d := newDispatcher(t, addr, &bytes.Buffer{})
	m, _ := delivery(`{"number":1}`, nil)
	m.MessageId = ""
	want := identity(m)
	pub := &publisher{}
	for attempt := 1; attempt <= 3; attempt++ {
		res := d.Handle(context.Background(), m, pub)
		if got := requests()[attempt-1].params["HTTP_X_MESSAGE_ID"]; got != want {
			t.Errorf("attempt %d: the worker saw id %q, want %q", attempt, got, want)
		}
		c := pub.sent[len(pub.sent)-1]
		if c.msg.MessageId != want {
			t.Errorf("attempt %d (%s): the copy's id is %q, want %q", attempt, res.Outcome, c.msg.MessageId, want)
		}
		m = amqp.Delivery{Acknowledger: &acknowledger{}, MessageId: c.msg.MessageId, Body: c.msg.Body, Headers: c.msg.Headers}
	}
	if pub.sent[2].queue != "jobs.dead" {
		t.Errorf("third copy went to %s, want jobs.dead", pub.sent[2].queue)
	}

	// With a correlation id, the id is that; a job not due, and a job put
	// back by copy, carry it too.
	m, _ = delivery(`{"number":1}`, amqp.Table{outcome.HeaderDue: time.Now().Add(time.Minute).UnixMilli()})
	m.MessageId, m.CorrelationId = "", "c-9"
	d.Handle(context.Background(), m, pub)
	if c := pub.sent[len(pub.sent)-1]; c.queue != "jobs.delay.32s" || c.msg.MessageId != "c-9" {
		t.Errorf("delayed copy to %s with id %q, want jobs.delay.32s with c-9", c.queue, c.msg.MessageId)
	}
	q := newDispatcher(t, "unix:///nonexistent/fpm.sock", &bytes.Buffer{})
	q.cfg.Topology.QueueType = broker.QueueQuorum
	m, _ = delivery(`{"number":1}`, nil)
	m.MessageId = ""
	q.Handle(context.Background(), m, pub)
	if c := pub.sent[len(pub.sent)-1]; c.queue != "jobs" || c.msg.MessageId != want {
		t.Errorf("requeued copy to %s with id %q, want jobs with %q", c.queue, c.msg.MessageId, want)
	}
}

// The ledger keys on the identity: a job without a message id but with a
// correlation id, whose ack was lost with its channel, is acked on its
// redelivery without running again.
func TestLedgerKeysOnIdentity(t *testing.T) {
	addr, seen := serve(t, status(200))
	d := newDispatcher(t, addr, &bytes.Buffer{})
	m, _ := delivery(`{"number":1}`, nil)
	m.MessageId, m.CorrelationId, m.Acknowledger = "", "c-1", &closedAcknowledger{}
	d.Handle(context.Background(), m, &publisher{})
	again, ack := delivery(`{"number":1}`, nil)
	again.MessageId, again.CorrelationId, again.Redelivered = "", "c-1", true
	if res := d.Handle(context.Background(), again, &publisher{}); res.Outcome != outcome.AlreadyDone || len(seen()) != 1 || ack.settled[0] != "ack" {
		t.Errorf("redelivery: %s after %d runs, settled %v; want already-done after 1", res.Outcome, len(seen()), ack.settled)
	}
}

// Two jobs with the same body and neither a message id nor a correlation
// id share their identity (the body's hash): the ledger keeps nothing for
// them, so the redelivery of one that never ran is run, not acked for the
// other that did.
func TestLedgerSkipsSharedIdentity(t *testing.T) {
	addr, seen := serve(t, status(200))
	d := newDispatcher(t, addr, &bytes.Buffer{})
	m, _ := delivery(`{"number":1}`, nil)
	m.MessageId, m.Acknowledger = "", &closedAcknowledger{}
	d.Handle(context.Background(), m, &publisher{})
	twin, ack := delivery(`{"number":1}`, nil)
	twin.MessageId, twin.Redelivered = "", true
	if res := d.Handle(context.Background(), twin, &publisher{}); res.Outcome != outcome.Succeeded || len(seen()) != 2 || ack.settled[0] != "ack" {
		t.Errorf("redelivered twin: %s after %d runs, settled %v; want succeeded after 2", res.Outcome, len(seen()), ack.settled)
	}
}

// A job the worker failed with Fpmq-Fail, whose dead letter was lost with
// the publishing channel, is dead-lettered on its redelivery, not run or
// retried.
func TestLedgerKeepsFail(t *testing.T) {
	addr, requests := fakeFPM(t, answerWith(200, "Fpmq-Fail", "never"))
	d := newDispatcher(t, addr, &bytes.Buffer{})
	res := d.Handle(context.Background(), must(delivery(`{"number":1}`, nil)), &publisher{fail: amqp.ErrClosed})
	if res.Outcome != outcome.Requeued {
		t.Fatalf("outcome %s, want requeued", res.Outcome)
	}
	again, _ := delivery(`{"number":1}`, nil)
	again.Redelivered = true
	pub := &publisher{}
	res = d.Handle(context.Background(), again, pub)
	if res.Outcome != outcome.DeadLettered || res.Reason != outcome.ReasonFailed || len(requests()) != 1 || len(pub.sent) != 1 ||
		pub.sent[0].queue != "jobs.dead" || pub.sent[0].msg.Headers[outcome.HeaderLastError] != "never" {
		t.Errorf("redelivery: %+v after %d runs, sent %+v; want dead-lettered as failed after 1 run", res, len(requests()), pub.sent)
	}
}

// The last error is cut on a character boundary.
func TestErrTextCutsOnACharacter(t *testing.T) {
	s := errText(errors.New(strings.Repeat("x", maxErrText-1) + "ü and more"))
	if len(s) != maxErrText-1 || !strings.HasSuffix(s, "x") {
		t.Errorf("errText kept %d bytes ending %q", len(s), s[len(s)-3:])
	}
}
