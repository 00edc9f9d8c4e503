package dispatch

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/fcgi"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/rs/zerolog"

	"github.com/fpmq/fpmq/services/internal/backoff"
	"github.com/fpmq/fpmq/services/internal/broker"
	"github.com/fpmq/fpmq/services/internal/fastcgi"
	"github.com/fpmq/fpmq/services/internal/outcome"
	"github.com/fpmq/fpmq/services/internal/phpfpm"
)

// acknowledger records how a delivery was settled.
type acknowledger struct {
	mu      sync.Mutex
	settled []string
}

func (a *acknowledger) record(s string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.settled = append(a.settled, s)
	return nil
}
func (a *acknowledger) Ack(uint64, bool) error { return a.record("ack") }
func (a *acknowledger) Nack(_ uint64, _ bool, requeue bool) error {
	if requeue {
		return a.record("nack-requeue")
	}
	return a.record("nack")
}
func (a *acknowledger) Reject(_ uint64, requeue bool) error {
	if requeue {
		return a.record("reject-requeue")
	}
	return a.record("reject")
}

// publisher records what the dispatcher publishes; fail makes it refuse
// (failTimes times, or always when failTimes is 0). called, if set, is
// told the number of each call as it starts.
type publisher struct {
	fail      error
	failTimes int
	calls     int
	panicking int // panic on this many calls first
	sent      []sent
	called    func(call int)
}

type sent struct {
	queue string
	msg   amqp.Publishing
}

func (p *publisher) Publish(_ context.Context, queue string, msg amqp.Publishing) error {
	if p.panicking > 0 {
		p.panicking--
		panic("publisher exploded")
	}
	p.calls++
	if p.called != nil {
		p.called(p.calls)
	}
	if p.fail != nil && (p.failTimes == 0 || p.calls <= p.failTimes) {
		return p.fail
	}
	p.sent = append(p.sent, sent{queue, msg})
	return nil
}

// seen is what the FastCGI server saw of one request.
type seen struct {
	form   url.Values
	header http.Header
	script string
	length int64
}

// serve runs handler as a FastCGI server on a unix socket and returns its
// address and what it saw.
func serve(t *testing.T, handler http.HandlerFunc) (string, func() []seen) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "fpm.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var mu sync.Mutex
	var got []seen
	go fcgi.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Errorf("parse form: %v", err)
		}
		mu.Lock()
		got = append(got, seen{r.PostForm, r.Header, fcgi.ProcessEnv(r)["SCRIPT_FILENAME"], r.ContentLength})
		mu.Unlock()
		handler(w, r)
	}))
	return "unix://" + sock, func() []seen {
		mu.Lock()
		defer mu.Unlock()
		return append([]seen(nil), got...)
	}
}

func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if code != 0 {
			w.WriteHeader(code)
		}
	}
}

var topology = broker.Topology{
	Queue:       "jobs",
	QueueType:   broker.QueueClassic,
	DeadQueue:   "jobs.dead",
	RetryDelays: broker.RetryDelays(3, backoff.Policy{Initial: time.Second, Factor: 2, Max: time.Minute}),
	DelayMax:    time.Hour,
}

func newDispatcher(t *testing.T, addr string, log *bytes.Buffer) *Dispatcher {
	t.Helper()
	return newDispatcherWith(t, addr, fastcgi.Options{}, log)
}

func newDispatcherWith(t *testing.T, addr string, opts fastcgi.Options, log *bytes.Buffer) *Dispatcher {
	t.Helper()
	client, err := fastcgi.NewClient(addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.CloseIdleConnections)
	// The run's overrun warning is logged from a timer's goroutine: the
	// buffer needs a lock.
	return New(client, &phpfpm.Pool{Client: client, PingPath: "/ping", StatusPath: "/status"}, Config{
		Script:         "/app/worker.php",
		Timeout:        2 * time.Second,
		MaxAttempts:    3,
		MaxMessageSize: 1024,
		Topology:       topology,
		CopyRetryMin:   time.Millisecond,
		CopyRetryMax:   4 * time.Millisecond,
	}, zerolog.New(zerolog.SyncWriter(log)))
}

func delivery(body string, headers amqp.Table) (amqp.Delivery, *acknowledger) {
	ack := &acknowledger{}
	return amqp.Delivery{
		Acknowledger: ack, MessageId: "m-1", Body: []byte(body),
		Timestamp: time.Unix(1700000000, 0), Headers: headers, ContentType: "application/json",
	}, ack
}

func TestHandle(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		headers amqp.Table
		status  int // the worker's answer; 0 writes nothing
		want    outcome.Outcome
		reason  string
		queue   string // where a copy goes, if anywhere
		runs    bool   // whether the worker sees the job
	}{
		{"success without Status header", `{"number":42}`, nil, 0, outcome.Succeeded, "", "", true},
		{"204", `{"number":42}`, nil, 204, outcome.Succeeded, "", "", true},
		{"worker error is retried", `{"number":42}`, nil, 500, outcome.Retried, "", "jobs.retry.1s", true},
		{"second failure waits longer", `{"number":42}`, amqp.Table{outcome.HeaderAttempt: int32(2)}, 503, outcome.Retried, "", "jobs.retry.2s", true},
		{"last attempt is dead-lettered", `{"number":42}`, amqp.Table{outcome.HeaderAttempt: int64(3)}, 500, outcome.DeadLettered, outcome.ReasonExhausted, "jobs.dead", true},
		{"4xx is dead-lettered at once", `{"number":42}`, nil, 422, outcome.DeadLettered, outcome.ReasonRejected, "jobs.dead", true},
		{"not json", `number=42`, nil, 0, outcome.DeadLettered, outcome.ReasonMalformed, "jobs.dead", false},
		{"not an object", `[42]`, nil, 0, outcome.DeadLettered, outcome.ReasonMalformed, "jobs.dead", false},
		{"a name PHP renames", `{"number":42,"user.email":"a@b"}`, nil, 0, outcome.DeadLettered, outcome.ReasonFormMismatch, "jobs.dead", false},
		{"too large", `{"number":1,"pad":"` + strings.Repeat("x", 1100) + `"}`, nil, 0, outcome.DeadLettered, outcome.ReasonTooLarge, "jobs.dead", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr, requests := serve(t, status(tc.status))
			var log bytes.Buffer
			d := newDispatcher(t, addr, &log)
			m, ack := delivery(tc.body, tc.headers)
			pub := &publisher{}

			res := d.Handle(context.Background(), m, pub)
			if res.Outcome != tc.want || res.Reason != tc.reason {
				t.Errorf("result %+v, want outcome %v reason %q; log:\n%s", res, tc.want, tc.reason, log.String())
			}
			// Every outcome here settles the delivery with an ack: copies
			// are published first.
			if len(ack.settled) != 1 || ack.settled[0] != "ack" {
				t.Errorf("settled %v, want [ack]", ack.settled)
			}
			switch {
			case tc.queue == "" && len(pub.sent) != 0:
				t.Errorf("published %+v, want nothing", pub.sent)
			case tc.queue != "" && (len(pub.sent) != 1 || pub.sent[0].queue != tc.queue):
				t.Errorf("published %+v, want one copy to %s", pub.sent, tc.queue)
			case tc.queue != "":
				msg := pub.sent[0].msg
				if string(msg.Body) != tc.body || msg.MessageId != "m-1" || msg.DeliveryMode != amqp.Persistent || msg.ContentType != "application/json" {
					t.Errorf("copy lost the original: %+v", msg)
				}
			}
			got := requests()
			if !tc.runs {
				if len(got) != 0 {
					t.Errorf("the worker ran a message it should not see: %+v", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("worker saw %d requests, want 1", len(got))
			}
			r := got[0]
			wantAttempt := strconv.Itoa(attemptOf(m))
			if r.form.Get("number") != "42" || r.header.Get("X-Message-Id") != "m-1" || r.header.Get("X-Attempt") != wantAttempt ||
				r.header.Get("X-Timestamp") != "1700000000" || r.script != "/app/worker.php" || r.length != int64(len("number=42")) {
				t.Errorf("worker saw %+v", r)
			}
		})
	}
}

func TestRetryCopy(t *testing.T) {
	addr, _ := serve(t, status(500))
	var log bytes.Buffer
	d := newDispatcher(t, addr, &log)
	m, _ := delivery(`{"number":7}`, amqp.Table{"tenant": "acme"})
	pub := &publisher{}
	d.Handle(context.Background(), m, pub)

	if len(pub.sent) != 1 {
		t.Fatalf("published %d copies, want 1", len(pub.sent))
	}
	h := pub.sent[0].msg.Headers
	if h[outcome.HeaderAttempt] != int64(2) || h[outcome.HeaderLastStatus] != int64(500) || !strings.Contains(h[outcome.HeaderLastError].(string), "500") || h["tenant"] != "acme" {
		t.Errorf("retry headers %v", h)
	}
	// The first retry waits 1s with jitter: between 500ms and 1s.
	ms, err := strconv.Atoi(pub.sent[0].msg.Expiration)
	if err != nil || ms < 500 || ms > 1000 {
		t.Errorf("expiration %q, want 500..1000 ms", pub.sent[0].msg.Expiration)
	}
}

func TestDeadLetterCopy(t *testing.T) {
	addr, _ := serve(t, status(500))
	var log bytes.Buffer
	d := newDispatcher(t, addr, &log)
	m, _ := delivery(`{"number":7}`, amqp.Table{outcome.HeaderAttempt: int64(3)})
	pub := &publisher{}
	d.Handle(context.Background(), m, pub)

	if len(pub.sent) != 1 {
		t.Fatalf("published %d copies, want 1", len(pub.sent))
	}
	h := pub.sent[0].msg.Headers
	if h[outcome.HeaderReason] != outcome.ReasonExhausted || h[outcome.HeaderAttempts] != int64(3) || h[outcome.HeaderLastStatus] != int64(500) || h[outcome.HeaderQueue] != "jobs" {
		t.Errorf("dead-letter headers %v", h)
	}
	if _, ok := h[outcome.HeaderAttempt]; ok {
		t.Errorf("dead letter keeps %s, so a replay would not start afresh: %v", outcome.HeaderAttempt, h)
	}
	if pub.sent[0].msg.Expiration != "" {
		t.Errorf("dead letter expires: %q", pub.sent[0].msg.Expiration)
	}
}

// A job the pool could not take is requeued with no attempt counted and no
// copy, and the error tells the consumer to pause.
func TestHandleUnreachablePool(t *testing.T) {
	var log bytes.Buffer
	d := newDispatcher(t, "unix://"+filepath.Join(t.TempDir(), "missing.sock"), &log)
	m, ack := delivery(`{"number":1}`, nil)
	pub := &publisher{}
	res := d.Handle(context.Background(), m, pub)
	if res.Outcome != outcome.Requeued || !errors.Is(res.Err, outcome.ErrPoolUnavailable) {
		t.Errorf("result %+v, want requeued with ErrPoolUnavailable", res)
	}
	if len(ack.settled) != 1 || ack.settled[0] != "nack-requeue" || len(pub.sent) != 0 {
		t.Errorf("settled %v, published %v; want [nack-requeue] and nothing", ack.settled, pub.sent)
	}
}

// A run past the deadline is waited for: the job's next attempt must not
// start while php-fpm still runs it. A run that then succeeds stands, once.
func TestHandleWaitsForARunPastItsDeadline(t *testing.T) {
	addr, requests := serve(t, func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(150 * time.Millisecond) // the script's own work, past its deadline
	})
	var log bytes.Buffer
	d := newDispatcher(t, addr, &log)
	d.cfg.Timeout = 20 * time.Millisecond
	m, ack := delivery(`{"number":1}`, nil)
	pub := &publisher{}
	res := d.Handle(context.Background(), m, pub)
	if res.Outcome != outcome.Succeeded || len(ack.settled) != 1 || ack.settled[0] != "ack" || len(pub.sent) != 0 {
		t.Errorf("result %+v, settled %v, published %v; want succeeded, acked, no copy", res, ack.settled, pub.sent)
	}
	if len(requests()) != 1 || res.WorkerTime < 150*time.Millisecond {
		t.Errorf("%d runs, worker time %s; want one run, waited for to its end", len(requests()), res.WorkerTime)
	}
	if !strings.Contains(log.String(), "job runs past REQUEST_TIMEOUT") || !strings.Contains(log.String(), "job ended after REQUEST_TIMEOUT") {
		t.Errorf("log does not say the job ran past its deadline:\n%s", log.String())
	}
}

// A run that php-fpm does not end within RunHold past the deadline is a
// failed attempt, said to be one that may still run.
func TestHandleAbandonsARunAfterRunHold(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	addr, _ := serve(t, func(http.ResponseWriter, *http.Request) { <-release })
	var log bytes.Buffer
	d := newDispatcher(t, addr, &log)
	d.cfg.Timeout, d.cfg.RunHold = 20*time.Millisecond, 50*time.Millisecond
	m, _ := delivery(`{"number":1}`, nil)
	pub := &publisher{}
	res := d.Handle(context.Background(), m, pub)
	if res.Outcome != outcome.Retried || !errors.Is(res.Err, context.DeadlineExceeded) || !strings.Contains(res.Err.Error(), "may still run") {
		t.Errorf("result %+v, want retried, the run abandoned", res)
	}
	if !strings.Contains(log.String(), "its next attempt may overlap this run") {
		t.Errorf("log does not warn of the overlap:\n%s", log.String())
	}
}

// A shutdown does not cut a running job short: php-fpm would run it on,
// and another daemon could start it meanwhile. Its answer settles it.
func TestHandleShutdownWaitsForTheRun(t *testing.T) {
	release := make(chan struct{})
	running := make(chan struct{})
	addr, _ := serve(t, func(http.ResponseWriter, *http.Request) {
		close(running) // the job's only request
		<-release
	})
	var log bytes.Buffer
	d := newDispatcher(t, addr, &log)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m, ack := delivery(`{"number":1}`, nil)
	pub := &publisher{}
	done := make(chan outcome.Result)
	go func() { done <- d.Handle(ctx, m, pub) }()
	<-running
	cancel()
	select {
	case res := <-done:
		t.Fatalf("Handle returned %+v while the job still ran", res)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	res := <-done
	if res.Outcome != outcome.Succeeded || len(ack.settled) != 1 || ack.settled[0] != "ack" {
		t.Errorf("result %+v, settled %v; want the run's own outcome, succeeded", res, ack.settled)
	}
}

// When the broker does not take the copy, the job is held and only its
// copy is tried again, with growing pauses: the worker does not run again.
func TestHandleCopyRefusedIsTriedAgain(t *testing.T) {
	addr, requests := serve(t, status(500))
	var log bytes.Buffer
	d := newDispatcher(t, addr, &log)
	m, ack := delivery(`{"number":1}`, nil)
	pub := &publisher{fail: broker.ErrNotConfirmed, failTimes: 3}
	res := d.Handle(context.Background(), m, pub)
	if res.Outcome != outcome.Retried || res.CopyFailures != 3 || len(pub.sent) != 1 {
		t.Errorf("result %+v, sent %d; want retried after 3 refusals", res, len(pub.sent))
	}
	if len(ack.settled) != 1 || ack.settled[0] != "ack" || len(requests()) != 1 {
		t.Errorf("settled %v, worker runs %d; want [ack] and one run", ack.settled, len(requests()))
	}
	if d.CopyTrouble() != nil {
		t.Errorf("CopyTrouble() = %v after the copy was taken", d.CopyTrouble())
	}
}

// A shutdown that runs out of time while a copy is refused requeues the
// job; so does a closed publishing channel, at once.
func TestHandleCopyRefusedUntilShutdown(t *testing.T) {
	addr, _ := serve(t, status(500))
	var log bytes.Buffer
	d := newDispatcher(t, addr, &log)
	ctx, cancel := context.WithCancel(context.Background())
	m, ack := delivery(`{"number":1}`, nil)
	// The second try means the first refusal was counted.
	again := make(chan struct{})
	pub := &publisher{fail: broker.ErrNotConfirmed, called: func(call int) {
		if call == 2 {
			close(again)
		}
	}}
	done := make(chan outcome.Result)
	go func() { done <- d.Handle(ctx, m, pub) }()
	<-again
	if err := d.CopyTrouble(); !errors.Is(err, broker.ErrNotConfirmed) {
		t.Errorf("CopyTrouble() = %v while the copy is refused", err)
	}
	cancel()
	res := <-done
	if res.Outcome != outcome.Requeued || len(ack.settled) != 1 || ack.settled[0] != "nack-requeue" {
		t.Errorf("result %+v, settled %v; want requeued", res, ack.settled)
	}

	m, ack = delivery(`{"number":1}`, nil)
	res = d.Handle(context.Background(), m, &publisher{fail: amqp.ErrClosed})
	if res.Outcome != outcome.Requeued || res.CopyFailures != 1 || ack.settled[0] != "nack-requeue" {
		t.Errorf("closed channel: result %+v, settled %v; want requeued at once", res, ack.settled)
	}
}

// A panic while handling a job dead-letters that job, and the daemon lives on.
func TestHandleRecoversFromPanic(t *testing.T) {
	addr, _ := serve(t, status(500))
	var log bytes.Buffer
	d := newDispatcher(t, addr, &log)
	m, ack := delivery(`{"number":1}`, nil)
	pub := &publisher{panicking: 1} // the retry copy panics, the dead letter works
	res := d.Handle(context.Background(), m, pub)
	if res.Outcome != outcome.DeadLettered || res.Reason != outcome.ReasonPanic {
		t.Errorf("result %+v, want dead-lettered for a panic", res)
	}
	if len(pub.sent) != 1 || pub.sent[0].queue != "jobs.dead" || len(ack.settled) != 1 || ack.settled[0] != "ack" {
		t.Errorf("published %v, settled %v", pub.sent, ack.settled)
	}
	if !strings.Contains(log.String(), "publisher exploded") || !strings.Contains(log.String(), "stack") {
		t.Errorf("panic not logged with its stack:\n%s", log.String())
	}

	// Should dead-lettering panic as well, the job is requeued.
	m, ack = delivery(`{"number":1}`, nil)
	res = d.Handle(context.Background(), m, &publisher{panicking: 2})
	if res.Outcome != outcome.Requeued || len(ack.settled) != 1 || ack.settled[0] != "nack-requeue" {
		t.Errorf("result %+v, settled %v; want requeued", res, ack.settled)
	}
}

func TestHeadersReachTheWorkerAsData(t *testing.T) {
	addr, requests := serve(t, status(200))
	var log bytes.Buffer
	d := newDispatcher(t, addr, &log)
	m, _ := delivery(`{"number":1}`, amqp.Table{
		"tenant-id":       "acme\r\nX-Evil: 1",
		"count":           int32(3),
		"nested":          amqp.Table{"a": "b"},
		"SCRIPT_FILENAME": "/etc/passwd",
	})
	d.Handle(context.Background(), m, &publisher{})
	got := requests()
	if len(got) != 1 {
		t.Fatalf("worker saw %d requests", len(got))
	}
	h := got[0].header
	if h.Get("X-Header-Tenant-Id") != "acmeX-Evil: 1" || h.Get("X-Header-Count") != "3" || h.Get("X-Header-Nested") != "" || h.Get("X-Evil") != "" {
		t.Errorf("worker headers %v", h)
	}
	if got[0].script != "/app/worker.php" {
		t.Errorf("a header chose the script: %q", got[0].script)
	}
}

func TestAttemptOf(t *testing.T) {
	tests := []struct {
		headers amqp.Table
		want    int
	}{
		{nil, 1},
		{amqp.Table{outcome.HeaderAttempt: int64(3)}, 3},
		{amqp.Table{outcome.HeaderAttempt: int32(2)}, 2},
		{amqp.Table{outcome.HeaderAttempt: "4"}, 1},
		{amqp.Table{outcome.HeaderAttempt: int64(-1)}, 1},
	}
	for _, tc := range tests {
		if got := attemptOf(amqp.Delivery{Headers: tc.headers, Redelivered: true}); got != tc.want {
			t.Errorf("attemptOf(%v) = %d, want %d", tc.headers, got, tc.want)
		}
	}
}

func TestCGIName(t *testing.T) {
	for in, want := range map[string]string{"tenant-id": "TENANT_ID", "a.b c": "A_B_C", "X9": "X9", "é": "__"} {
		if got := cgiName(in); got != want {
			t.Errorf("cgiName(%q) = %q, want %q", in, got, want)
		}
	}
}
