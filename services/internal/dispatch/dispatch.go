// Package dispatch runs one job message on the php-fpm pool and settles it
// with the broker: ack on success, a delayed retry on a failure that another
// attempt may fix, the dead-letter queue for a job that can never succeed,
// and a plain requeue when the job did not run through no fault of its own.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/fpmq/fpmq/services/internal/backoff"
	"github.com/fpmq/fpmq/services/internal/broker"
	"github.com/fpmq/fpmq/services/internal/fastcgi"
	"github.com/fpmq/fpmq/services/internal/outcome"
	"github.com/fpmq/fpmq/services/internal/phpform"
	"github.com/fpmq/fpmq/services/internal/phpfpm"
)

// Publisher sends a message to a queue and returns once the broker
// confirmed it; broker.Publisher is one.
type Publisher interface {
	Publish(ctx context.Context, queue string, msg amqp.Publishing) error
}

// BodyMode says how a job's body reaches the script.
type BodyMode string

// The body modes.
const (
	// BodyForm posts the fields of a JSON object body as a form, as
	// http_build_query would: the script reads $_POST.
	BodyForm BodyMode = "form"
	// BodyRaw posts the body unchanged, with the message's content type:
	// the script reads php://input.
	BodyRaw BodyMode = "raw"
)

// Config is what a Dispatcher needs besides its FastCGI client.
type Config struct {
	// Script is the absolute path of the worker script in the php-fpm
	// container. It comes from configuration only, never from a message.
	Script string
	// Body says how the job's body is handed to the script.
	Body BodyMode
	// FormLimits are the pool's max_input_vars and max_input_nesting_level,
	// which a form body must stay within.
	FormLimits phpform.Limits
	// Timeout is an attempt's deadline, which the script sees
	// (HTTP_X_DEADLINE). php-fpm's request_terminate_timeout should end a
	// run there: the daemon never ends it itself, since php-fpm would run
	// the script on regardless. It waits for php-fpm to end every run,
	// past Timeout and through a shutdown, so that a job's next attempt
	// never starts while an earlier one may still run.
	Timeout time.Duration
	// RunHold bounds how long past Timeout the daemon waits for php-fpm to
	// end a run, holding its delivery, before it counts the attempt as
	// failed although the script may still run (the broker would take the
	// delivery back at its consumer acknowledgement timeout anyway). 0
	// means no bound.
	RunHold time.Duration
	// MaxAttempts is how many times a job runs before it is dead-lettered.
	MaxAttempts int
	// MaxMessageSize bounds a message's body in bytes, checked first.
	MaxMessageSize int
	// Topology names the job, retry and dead-letter queues; its
	// RetryDelays hold MaxAttempts-1 delays.
	Topology broker.Topology
	// CopyRetryMin and CopyRetryMax bound the growing pauses between tries
	// of a retry or dead-letter copy the broker did not take. The job is
	// not run again meanwhile: only its copy is published again.
	CopyRetryMin, CopyRetryMax time.Duration
	// CopyHold bounds how long a job waits for the broker to take its
	// retry or dead-letter copy (a resource alarm blocks it; a full queue
	// refuses it), holding its delivery, before the delivery goes back to
	// its queue. It keeps the delivery within the broker's consumer
	// acknowledgement timeout. 0 means no bound.
	CopyHold time.Duration
	// Tracer makes one span per delivery (see startSpan), and the outcome
	// lines carry its trace and span ids. Nil means tracing is off: no
	// span is made, but a producer's valid context still reaches the
	// script (HTTP_TRACEPARENT) unchanged.
	Tracer trace.Tracer
}

// poolCheckTimeout bounds the ping that tells a job that broke because
// php-fpm went away from one that broke on its own.
const poolCheckTimeout = 2 * time.Second

// Dispatcher hands job messages to the php-fpm pool. It is safe for
// concurrent use; the caller bounds the concurrency.
type Dispatcher struct {
	client *fastcgi.Client
	pool   *phpfpm.Pool
	cfg    Config
	log    zerolog.Logger
	// fixed holds the CGI params that are the same for every job.
	fixed []fastcgi.Param

	// Jobs whose copy the broker keeps refusing, the last refusal, and
	// all refusals so far.
	stuck        atomic.Int64
	copyError    atomic.Pointer[error]
	copyFailures atomic.Int64

	ledger ledger

	// tracer is Config.Tracer, or a no-op one; traced says Config.Tracer
	// was set. spanName names every span ("process QUEUE"). traceLog logs
	// malformed trace contexts, a few a minute.
	tracer   trace.Tracer
	traced   bool
	spanName string
	traceLog zerolog.Logger

	// poolCheck bounds the ping of poolDown: poolCheckTimeout, shorter in
	// tests whose pool never answers it.
	poolCheck time.Duration
}

// New returns a Dispatcher that sends jobs through client and asks pool
// whether php-fpm is still there when a job's connection breaks.
func New(client *fastcgi.Client, pool *phpfpm.Pool, cfg Config, log zerolog.Logger) *Dispatcher {
	if cfg.Body == "" {
		cfg.Body = BodyForm
	}
	name := "/" + path.Base(cfg.Script)
	traced := cfg.Tracer != nil
	if !traced {
		cfg.Tracer = noop.NewTracerProvider().Tracer("")
	}
	return &Dispatcher{
		client: client,
		pool:   pool,
		cfg:    cfg,
		log:    log,
		fixed: []fastcgi.Param{
			{Name: "GATEWAY_INTERFACE", Value: "CGI/1.1"},
			{Name: "SERVER_SOFTWARE", Value: "fpmq"},
			{Name: "SERVER_PROTOCOL", Value: "HTTP/1.1"},
			{Name: "REQUEST_METHOD", Value: "POST"},
			{Name: "SCRIPT_FILENAME", Value: cfg.Script},
			{Name: "SCRIPT_NAME", Value: name},
			{Name: "REQUEST_URI", Value: name},
			{Name: "DOCUMENT_URI", Value: name},
			{Name: "QUERY_STRING", Value: ""},
		},
		poolCheck: poolCheckTimeout,
		tracer:    cfg.Tracer,
		traced:    traced,
		spanName:  "process " + cfg.Topology.Queue,
		traceLog:  log.Sample(&zerolog.BurstSampler{Burst: malformedLogBurst, Period: time.Minute}),
	}
}

// CopyTrouble returns the broker's last refusal of a retry or dead-letter
// copy while some job still waits for its copy to be taken, else nil.
func (d *Dispatcher) CopyTrouble() error {
	if d.stuck.Load() == 0 {
		return nil
	}
	if p := d.copyError.Load(); p != nil {
		return *p
	}
	return errors.New("the broker does not take retry or dead-letter copies")
}

// CopyFailures returns how many times the broker refused a retry or
// dead-letter copy so far, each refusal counted as it happens.
func (d *Dispatcher) CopyFailures() int64 { return d.copyFailures.Load() }

// Handle runs the job in m and settles m, publishing retry and dead-letter
// copies through pub before acking the original, so that a job is never
// lost between the two. It returns once m is settled, or once settling
// failed because the channel is gone (the broker then requeues m itself).
// Cancelling ctx (a shutdown) requeues a job that waits to be due, or
// whose copy the broker does not take; a job php-fpm runs is waited for
// until php-fpm ends it (see Config.Timeout).
//
// A Result whose Err wraps outcome.ErrPoolUnavailable means the pool could
// not take the job, or php-fpm refused to run the script: m was requeued
// with no attempt counted, and the caller should stop taking jobs until
// the pool answers again. Handle logs one line per job.
//
// A job's identity (see identity) is its message id from the start: the
// worker sees it, the ledger keys on it, and every copy carries it.
func (d *Dispatcher) Handle(ctx context.Context, m amqp.Delivery, pub Publisher) (res outcome.Result) {
	start := time.Now()
	m.MessageId = identity(m)
	res.Attempt = attemptOf(m)
	res.MaxAttempts = d.ownLimit(m)
	ctx, span := d.startSpan(ctx, m, start)
	defer func() {
		// No message may crash the daemon: whatever went wrong is this
		// message's problem, and it goes to the dead-letter queue.
		if p := recover(); p != nil {
			d.log.Error().Str("message_id", m.MessageId).Str("panic", fmt.Sprint(p)).Bytes("stack", debug.Stack()).Msg("panic while handling a job")
			res.Err = fmt.Errorf("panic: %v", p)
			res.Reason = outcome.ReasonPanic
			res.Outcome = d.rescue(ctx, m, pub, &res)
		}
		res.Duration = time.Since(start)
		d.logResult(m, res, span.SpanContext())
		endSpan(span, res)
	}()

	if d.settleFromLedger(ctx, m, pub, &res) {
		return res
	}
	if st := track(&m); st != nil {
		defer d.noteUnsettled(m, st, &res)
	}
	body, contentType, settled := d.admit(ctx, m, pub, &res)
	if settled {
		return res
	}
	v := d.attempt(ctx, m, body, contentType, &res)
	d.settleVerdict(ctx, m, pub, v, &res)
	return res
}

// settleFromLedger settles a redelivered m by what its attempt did, if the
// ledger holds that attempt (see ledger): an ack if nothing is left to do,
// else the dead-letter queue or the failure path, as the attempt's verdict
// said, for the attempt that *res then describes.
// It reports whether it settled m.
func (d *Dispatcher) settleFromLedger(ctx context.Context, m amqp.Delivery, pub Publisher, res *outcome.Result) bool {
	e, ok := d.ledger.take(m)
	if !ok {
		return false
	}
	if e.done {
		res.Outcome = outcome.AlreadyDone
		settle(d.log, m.Ack(false)) // false: this delivery only
		return true
	}
	// The attempt ran and failed, and its copy was lost with its channel:
	// count it now, or dead-letter the job as its answer said.
	*res = e.res
	if e.deadLetter {
		res.Outcome = d.deadLetter(ctx, m, pub, res)
		return true
	}
	res.Outcome = d.failed(ctx, m, pub, res)
	return true
}

// track wraps m's Acknowledger in a settlement, so that Handle learns
// whether m was settled, and returns it; nil if m has no Acknowledger.
func track(m *amqp.Delivery) *settlement {
	if m.Acknowledger == nil {
		return nil
	}
	st := &settlement{Acknowledger: m.Acknowledger}
	m.Acknowledger = st
	return st
}

// noteUnsettled records in the ledger an attempt of m that ran to an end
// which needs nothing more (res.Outcome Succeeded, Retried or DeadLettered)
// but whose channel closed before m was settled: the broker delivers the
// job again, and the ledger acks it then without running it.
func (d *Dispatcher) noteUnsettled(m amqp.Delivery, st *settlement, res *outcome.Result) {
	if st.used && st.err != nil && res.Ran {
		switch res.Outcome {
		case outcome.Succeeded, outcome.Retried, outcome.DeadLettered:
			d.ledger.record(m, ledgerEntry{done: true})
		}
	}
}

// admit returns the request body for m and its content type, or settles m
// without running it (settled is true, res.Outcome says how): a job not yet
// due goes to a delay queue (notDue), one too large or whose body cannot be
// handed to the script to the dead-letter queue.
func (d *Dispatcher) admit(ctx context.Context, m amqp.Delivery, pub Publisher, res *outcome.Result) (body []byte, contentType string, settled bool) {
	if o, held := d.notDue(ctx, m, pub, res); held {
		res.Outcome = o
		return nil, "", true
	}
	if len(m.Body) > d.cfg.MaxMessageSize {
		res.Reason = outcome.ReasonTooLarge
		res.Err = fmt.Errorf("message of %d bytes exceeds the limit of %d", len(m.Body), d.cfg.MaxMessageSize)
		res.Outcome = d.deadLetter(ctx, m, pub, res)
		return nil, "", true
	}
	body, contentType, err := d.body(m)
	if err != nil {
		res.Reason, res.Err = outcome.ReasonMalformed, err
		if errors.Is(err, phpform.ErrFormMismatch) {
			res.Reason = outcome.ReasonFormMismatch
		}
		res.Outcome = d.deadLetter(ctx, m, pub, res)
		return nil, "", true
	}
	return body, contentType, false
}

// attempt runs the job on php-fpm, notes in *res what ran (Ran,
// WorkerTime, Status, StderrDropped, Fatal), logs the worker's stderr, and
// returns what the answer means (decide), pinging the pool only if decide
// asks.
func (d *Dispatcher) attempt(ctx context.Context, m amqp.Delivery, body []byte, contentType string, res *outcome.Result) verdict {
	var stderr phpfpm.Stderr
	sent := time.Now()
	resp, end, err := d.run(ctx, m, body, contentType, res, &stderr)
	stderr.Close()
	res.Ran, res.WorkerTime = true, time.Since(sent)
	if resp != nil {
		res.Status = resp.Status
	}
	d.logStderr(m.MessageId, &stderr)
	res.StderrDropped, _ = stderr.Dropped()
	res.Stderr = outcome.Excerpt(strings.Join(stderr.Messages(), "\n"))
	a := answer{resp: resp, err: err}
	if err == nil {
		a.refusal, a.refused = phpfpm.Refused(resp.Status, &stderr)
	}
	a.fatal = stderr.Fatal()
	res.Fatal = a.fatal != ""
	a.overran, a.abandoned = end.overran, end.abandoned
	if a.abandoned {
		d.log.Error().Str("message_id", m.MessageId).Dur("timeout", d.cfg.Timeout).Dur("held", d.cfg.RunHold).
			Msg("php-fpm still runs the job after REQUEST_TIMEOUT and as long again as the broker lets the daemon hold it: counted as failed; its next attempt may overlap this run. Set php-fpm's request_terminate_timeout to REQUEST_TIMEOUT")
	} else if a.overran && err == nil {
		d.log.Warn().Str("message_id", m.MessageId).Dur("timeout", d.cfg.Timeout).Dur("took", res.WorkerTime).
			Msg("job ended after REQUEST_TIMEOUT; its answer stands")
	}
	// The ping outlives a shutdown: it decides whether an attempt counts.
	v := decide(a, rules{script: d.cfg.Script, delayMax: d.cfg.Topology.DelayMax}, func() bool { return d.poolDown(context.WithoutCancel(ctx)) })
	for _, bad := range v.malformed {
		d.log.Warn().Str("message_id", m.MessageId).Str("header", bad.header).Str("value", bad.value).Str("expected", bad.want).
			Msg("the worker answered a malformed value: ignored, as if it were absent")
	}
	return v
}

// settleVerdict settles m as v says, noting in *res the error, reason and
// outcome.
func (d *Dispatcher) settleVerdict(ctx context.Context, m amqp.Delivery, pub Publisher, v verdict, res *outcome.Result) {
	res.Err = v.err
	if v.reason != "" {
		res.Reason = v.reason
	}
	res.RetryAsked, res.RetryIn = v.retry, v.retryIn
	if v.maxAttempts > 0 {
		res.MaxAttempts = limitAfter(d.limit(res), res.Attempt, v.maxAttempts, v.retry)
	}
	switch v.kind {
	case succeed:
		res.Outcome = outcome.Succeeded
		settle(d.log, m.Ack(false)) // false: this delivery only
	case failAttempt:
		res.Outcome = d.failed(ctx, m, pub, res)
	case deadLetterNow:
		res.Outcome = d.deadLetter(ctx, m, pub, res)
	case requeuePoolUnavailable:
		res.Outcome = d.requeue(ctx, m, pub)
	}
	if v.refusal != "" {
		d.log.Error().Str("script", d.cfg.Script).Int("status", res.Status).Str("php_fpm", v.refusal).
			Msg("php-fpm cannot run the worker script: check SCRIPT_FILENAME and the pool (security.limit_extensions, file permissions); jobs wait in the queue")
	}
}

// dueSlack is how early a job may be taken and still run: the daemon
// waits that long at most rather than send it through a delay queue again.
const dueSlack = time.Second

// notDue settles m if its HeaderDue is more than dueSlack ahead: a copy goes
// to the delay queue of the largest delay not above the time left, and m is
// acked, with no attempt counted. A job due within dueSlack is waited for,
// and handled as any other: held is false. If ctx ends while it waits, m
// is requeued.
func (d *Dispatcher) notDue(ctx context.Context, m amqp.Delivery, pub Publisher, res *outcome.Result) (o outcome.Outcome, held bool) {
	due, ok := outcome.Due(m.Headers[outcome.HeaderDue])
	if !ok {
		return 0, false
	}
	left := time.Until(due)
	if left > dueSlack {
		if delay, ok := broker.DelayBucket(left, d.cfg.Topology.DelayMax); ok {
			msg := broker.CopyOf(m)
			carryTrace(ctx, msg.Headers)
			return d.forward(ctx, m, pub, d.cfg.Topology.DelayQueue(delay), msg, outcome.Delayed, res), true
		}
	}
	if left <= 0 {
		return 0, false
	}
	t := time.NewTimer(min(left, dueSlack))
	defer t.Stop()
	select {
	case <-t.C:
		return 0, false
	case <-ctx.Done():
		res.Err = fmt.Errorf("aborted by shutdown while waiting for the job to be due: %w", ctx.Err())
		return d.requeue(ctx, m, pub), true
	}
}

// failed settles a failed attempt: a retry, or the dead-letter queue once
// the job's attempts (its own limit, else the route's) are spent.
func (d *Dispatcher) failed(ctx context.Context, m amqp.Delivery, pub Publisher, res *outcome.Result) outcome.Outcome {
	if res.Attempt >= d.limit(res) {
		res.Reason = outcome.ReasonExhausted
		return d.deadLetter(ctx, m, pub, res)
	}
	return d.retry(ctx, m, pub, res)
}

// ownLimit returns m's own limit of attempts in all
// (outcome.HeaderMaxAttempts), or 0 if it has none. A header whose value
// is not one is logged and ignored: the route's MaxAttempts applies.
func (d *Dispatcher) ownLimit(m amqp.Delivery) int {
	n, ok, present := ownLimit(m.Headers)
	if !ok && present {
		d.log.Warn().Str("message_id", m.MessageId).Str("header", outcome.HeaderMaxAttempts).Str("value", fmt.Sprint(m.Headers[outcome.HeaderMaxAttempts])).
			Msg("the job's own limit of attempts is not a whole number from 1 to 1000: ignored, the route's MAX_ATTEMPTS applies")
	}
	return n
}

// limit returns the number of attempts the job of res gets in all: its own
// limit (res.MaxAttempts), else the route's MaxAttempts.
func (d *Dispatcher) limit(res *outcome.Result) int {
	if res.MaxAttempts > 0 {
		return res.MaxAttempts
	}
	return d.cfg.MaxAttempts
}

// body returns the request body for m and its content type.
func (d *Dispatcher) body(m amqp.Delivery) ([]byte, string, error) {
	if d.cfg.Body == BodyRaw {
		ct := m.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		return m.Body, cgiValue(ct), nil
	}
	form, err := phpform.Form(m.Body, d.cfg.FormLimits)
	return form, "application/x-www-form-urlencoded", err
}

// run sends the job to php-fpm as attempt res.Attempt of the job's limit
// (limit), and returns php-fpm's answer and how the run ended; the error
// wraps the request's.
func (d *Dispatcher) run(ctx context.Context, m amqp.Delivery, body []byte, contentType string, res *outcome.Result, stderr *phpfpm.Stderr) (*fastcgi.Response, runEnd, error) {
	start := time.Now()
	deadline := start.Add(d.cfg.Timeout)
	// Neither the deadline nor a shutdown ends the request: php-fpm would
	// run the script on, and its next attempt could start meanwhile.
	runCtx, cancel := context.WithoutCancel(ctx), context.CancelFunc(func() {})
	if d.cfg.RunHold > 0 {
		runCtx, cancel = context.WithDeadline(runCtx, deadline.Add(d.cfg.RunHold))
	}
	defer cancel()
	overrun := time.AfterFunc(d.cfg.Timeout, func() {
		d.log.Warn().Str("message_id", m.MessageId).Dur("timeout", d.cfg.Timeout).
			Msg("job runs past REQUEST_TIMEOUT: waiting for php-fpm to end it before anything else; php-fpm's request_terminate_timeout should end it")
	})
	defer overrun.Stop()

	params := appendTraceParams(d.params(m, len(body), contentType, res.Attempt, d.limit(res), deadline), ctx)
	resp, err := d.client.Do(runCtx, &fastcgi.Request{Params: params, Body: body, Stderr: stderr})
	// Only RunHold's deadline bounds runCtx; the connection's deadline,
	// set from it, can fire a moment before the context's timer.
	abandoned := err != nil && (runCtx.Err() != nil || errors.Is(err, context.DeadlineExceeded))
	end := runEnd{overran: time.Since(start) > d.cfg.Timeout, abandoned: abandoned}
	if err != nil {
		return nil, end, fmt.Errorf("fastcgi request: %w", err)
	}
	return resp, end, nil
}

// params returns the CGI params of a run of m: the fixed ones, the body's
// (its length in bytes and content type), the job's (appendJobParams),
// its headers and the whole message (HTTP_X_FPMQ_MESSAGE). What is too
// large for a FastCGI record is left out, named for the worker and logged.
func (d *Dispatcher) params(m amqp.Delivery, bodyLen int, contentType string, attempt, maxAttempts int, deadline time.Time) []fastcgi.Param {
	params := make([]fastcgi.Param, 0, len(d.fixed)+20+len(m.Headers))
	params = append(params, d.fixed...)
	params = append(params,
		fastcgi.Param{Name: "CONTENT_TYPE", Value: contentType},
		fastcgi.Param{Name: "CONTENT_LENGTH", Value: strconv.Itoa(bodyLen)},
		postReading(contentType),
	)
	params = appendJobParams(params, m, d.cfg.Topology.Queue, attempt, maxAttempts, deadline)
	params, omitted := appendHeaderParams(params, m.Headers)
	params, omitted = appendMessageParam(params, m, omitted)
	if len(omitted) > 0 {
		d.log.Warn().Str("message_id", m.MessageId).Strs("headers", omitted).
			Msg("headers too large for a FastCGI record were left out; the worker sees their names in HTTP_X_FPMQ_OMITTED_HEADERS")
	}
	return appendOmitted(params, omitted)
}

// runEnd says how a run ended with respect to its deadline.
type runEnd struct {
	// overran: the run outlasted Config.Timeout.
	overran bool
	// abandoned: the daemon stopped waiting for php-fpm after RunHold;
	// the script may still run.
	abandoned bool
}

// postReading returns the PHP_VALUE param that keeps PHP from consuming
// the request body of the given content type before the script runs. PHP
// parses a multipart/form-data body into $_POST and $_FILES and then leaves
// php://input empty (php-src main/rfc1867.c; PHP's manual on php://input),
// so a job whose body is such a form would reach a raw-mode script as
// nothing. enable_post_data_reading=Off leaves it on php://input. Every
// request carries the setting, On otherwise, because php-fpm keeps a
// PHP_VALUE for the child's later requests (fpm_php_apply_defines_ex
// alters the master value).
func postReading(contentType string) fastcgi.Param {
	media, _, _ := strings.Cut(contentType, ";")
	if strings.EqualFold(strings.TrimSpace(media), "multipart/form-data") {
		return fastcgi.Param{Name: "PHP_VALUE", Value: "enable_post_data_reading=Off"}
	}
	return fastcgi.Param{Name: "PHP_VALUE", Value: "enable_post_data_reading=On"}
}

// retry publishes a copy of m for its next attempt, then acks m: to the
// retry queue of its attempt, with a jittered expiration; or, when the
// worker asked for the wait (res.RetryAsked), through the delay queues
// (retryAfter). A job whose own limit of attempts outlasts the route's
// retry queues waits in the last of them; on a route with none
// (MAX_ATTEMPTS 1), a second through the delay queues.
func (d *Dispatcher) retry(ctx context.Context, m amqp.Delivery, pub Publisher, res *outcome.Result) outcome.Outcome {
	if res.RetryAsked {
		return d.retryAfter(ctx, m, pub, res, res.RetryIn)
	}
	if len(d.cfg.Topology.RetryDelays) == 0 {
		return d.retryAfter(ctx, m, pub, res, time.Second)
	}
	level := min(res.Attempt, len(d.cfg.Topology.RetryDelays)) - 1
	delay := backoff.Jitter(d.cfg.Topology.RetryDelays[level])
	msg := d.retryCopy(ctx, m, res)
	msg.Expiration = strconv.FormatInt(max(delay.Milliseconds(), 1), 10)
	return d.forward(ctx, m, pub, d.cfg.Topology.RetryQueue(level), msg, outcome.Retried, res)
}

// retryAfter publishes a copy of m for its next attempt, due in wait, then
// acks m. The copy carries its due time (outcome.HeaderDue, Unix ms) and
// goes, as a delayed job does, to the delay queue of the largest delay not
// above wait (broker.DelayBucket), whence the job queue takes it back and
// Handle holds it until it is due (notDue). A wait under a second goes
// straight to the tail of the job queue, and one of 0 carries no due time:
// it runs again as soon as its turn comes.
func (d *Dispatcher) retryAfter(ctx context.Context, m amqp.Delivery, pub Publisher, res *outcome.Result, wait time.Duration) outcome.Outcome {
	msg := d.retryCopy(ctx, m, res)
	queue := d.cfg.Topology.Queue
	if wait > 0 {
		msg.Headers[outcome.HeaderDue] = time.Now().Add(wait).UnixMilli()
		if bucket, ok := broker.DelayBucket(wait, d.cfg.Topology.DelayMax); ok {
			queue = d.cfg.Topology.DelayQueue(bucket)
		}
	}
	return d.forward(ctx, m, pub, queue, msg, outcome.Retried, res)
}

// retryCopy returns the copy of m that carries its next attempt: its
// number, the last status and error, the job's own limit of attempts, and
// its trace (carryTrace, from the span in ctx).
func (d *Dispatcher) retryCopy(ctx context.Context, m amqp.Delivery, res *outcome.Result) amqp.Publishing {
	msg := broker.CopyOf(m)
	carryTrace(ctx, msg.Headers)
	msg.Headers[outcome.HeaderAttempt] = int64(res.Attempt + 1)
	msg.Headers[outcome.HeaderLastStatus] = int64(res.Status)
	msg.Headers[outcome.HeaderLastError] = errText(res.Err)
	carryLimit(msg.Headers, res)
	return msg
}

// carryLimit writes the job's own limit of attempts (res.MaxAttempts) in
// h, a copy's headers, as outcome.HeaderMaxAttempts; a job without one
// loses a header that did not hold a valid one.
func carryLimit(h amqp.Table, res *outcome.Result) {
	if res.MaxAttempts > 0 {
		h[outcome.HeaderMaxAttempts] = int64(res.MaxAttempts)
	} else {
		delete(h, outcome.HeaderMaxAttempts)
	}
}

// deadLetter publishes a copy of m, with the reason and the last failure in
// its headers, to the dead-letter queue, then acks m.
func (d *Dispatcher) deadLetter(ctx context.Context, m amqp.Delivery, pub Publisher, res *outcome.Result) outcome.Outcome {
	msg := broker.CopyOf(m)
	// A replayed dead job starts again from its first attempt.
	delete(msg.Headers, outcome.HeaderAttempt)
	msg.Headers[outcome.HeaderAttempts] = int64(res.Attempt)
	msg.Headers[outcome.HeaderReason] = res.Reason
	msg.Headers[outcome.HeaderLastStatus] = int64(res.Status)
	msg.Headers[outcome.HeaderLastError] = errText(res.Err)
	msg.Headers[outcome.HeaderQueue] = d.cfg.Topology.Queue
	carryLimit(msg.Headers, res)
	carryTrace(ctx, msg.Headers)
	return d.forward(ctx, m, pub, d.cfg.Topology.DeadQueue, msg, outcome.DeadLettered, res)
}

// forward publishes msg to queue and acks m once the broker confirmed msg.
// While the broker refuses msg (a queue at its length limit, a lost
// permission), it tries again after growing pauses, holding m: the job
// does not run again for it. It never sends msg again once the broker may
// hold it: a confirm that does not come (a resource alarm, RabbitMQ's
// connection.blocked) is waited for, up to Config.CopyHold. If the
// publishing channel closes, or CopyHold passes, or ctx ends between two
// tries (a shutdown that ran out of time), m goes back to its queue
// instead, and a failed attempt is noted in the ledger, so that the
// redelivery counts it rather than running the job again.
func (d *Dispatcher) forward(ctx context.Context, m amqp.Delivery, pub Publisher, queue string, msg amqp.Publishing, o outcome.Outcome, res *outcome.Result) outcome.Outcome {
	pause := d.cfg.CopyRetryMin
	// The copy must reach the broker even during a shutdown: only the
	// hold bounds it.
	hold, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if d.cfg.CopyHold > 0 {
		hold, cancel = context.WithTimeout(context.WithoutCancel(ctx), d.cfg.CopyHold)
	}
	defer cancel()
	giveUp := func(err error, why string) outcome.Outcome {
		d.log.Warn().Err(err).Str("message_id", m.MessageId).Str("queue", queue).Msg(why + "; requeueing the job")
		if res.Ran && o != outcome.Delayed && o != outcome.Succeeded {
			d.ledger.record(m, ledgerEntry{res: *res, deadLetter: o == outcome.DeadLettered})
		}
		return d.requeue(ctx, m, pub)
	}
	for {
		err := pub.Publish(hold, queue, msg)
		if err == nil {
			if res.CopyFailures > 0 {
				d.log.Info().Str("message_id", m.MessageId).Str("queue", queue).Int("refusals", res.CopyFailures).Msg("the broker took the copy at last")
			}
			settle(d.log, m.Ack(false)) // false: this delivery only
			return o
		}
		if res.CopyFailures == 0 {
			d.stuck.Add(1)
			defer d.stuck.Add(-1)
		}
		res.CopyFailures++
		d.copyFailures.Add(1)
		d.copyError.Store(&err)
		switch {
		case hold.Err() != nil:
			return giveUp(err, fmt.Sprintf("the broker took no copy within %s, the longest a job may wait for it under AMQP_CONSUMER_TIMEOUT", d.cfg.CopyHold))
		case !errors.Is(err, broker.ErrNotConfirmed):
			// The channel is gone, and the broker may hold the copy or
			// not: sending it again might duplicate it.
			return giveUp(err, "publishing channel closed before the copy was confirmed")
		}
		d.log.Warn().Err(err).Str("message_id", m.MessageId).Str("queue", queue).Dur("retry_in", pause).Int("refusals", res.CopyFailures).
			Msg("broker did not take the copy; holding the job and trying again")
		if !backoff.Sleep(ctx, backoff.Jitter(pause)) {
			return d.requeue(ctx, m, pub)
		}
		pause = min(pause*2, d.cfg.CopyRetryMax)
	}
}

// rescue dead-letters m after a panic. Should that panic too, m goes back
// to its queue: the daemon survives either way.
func (d *Dispatcher) rescue(ctx context.Context, m amqp.Delivery, pub Publisher, res *outcome.Result) (o outcome.Outcome) {
	defer func() {
		if p := recover(); p != nil {
			d.log.Error().Str("panic", fmt.Sprint(p)).Str("message_id", m.MessageId).Msg("panic while dead-lettering; requeueing the job")
			backoff.Sleep(ctx, d.cfg.CopyRetryMin)
			o = d.requeue(ctx, m, pub)
		}
	}()
	return d.deadLetter(ctx, m, pub, res)
}

// requeue puts m back at its queue with no attempt counted, by a copy if
// the queue counts returns toward a delivery limit (broker.Requeue).
func (d *Dispatcher) requeue(ctx context.Context, m amqp.Delivery, pub Publisher) outcome.Outcome {
	settle(d.log, broker.Requeue(ctx, pub, m, d.cfg.Topology.Queue, broker.CountsReturns(d.cfg.Topology.QueueType)))
	return outcome.Requeued
}

// logResult logs the outcome line of m, with the trace and span ids of sc
// when tracing is on.
func (d *Dispatcher) logResult(m amqp.Delivery, res outcome.Result, sc trace.SpanContext) {
	var e *zerolog.Event
	switch res.Outcome {
	case outcome.Succeeded, outcome.Delayed:
		e = d.log.Info()
	case outcome.DeadLettered:
		e = d.log.Error()
	default:
		e = d.log.Warn()
	}
	if e == nil {
		return // level disabled
	}
	e = e.Str("message_id", m.MessageId).Int("attempt", res.Attempt)
	if res.MaxAttempts > 0 {
		e = e.Int("max_attempts", res.MaxAttempts)
	}
	if res.RetryAsked {
		e = e.Dur("retry_in", res.RetryIn)
	}
	if m.Type != "" {
		e = e.Str("job", m.Type)
	}
	if res.Status != 0 {
		e = e.Int("status", res.Status)
	}
	if res.Reason != "" {
		e = e.Str("reason", res.Reason)
	}
	if due, ok := outcome.Due(m.Headers[outcome.HeaderDue]); ok && res.Outcome == outcome.Delayed {
		e = e.Time("due", due)
	}
	if res.Err != nil {
		e = e.Err(res.Err)
	}
	d.logTrace(e, sc).Dur("duration", res.Duration).Str("outcome", res.Outcome.String()).Msg("job " + res.Outcome.String())
}

// logStderr logs each message the worker wrote to its FastCGI stderr as
// an event of its own, and what was left out.
func (d *Dispatcher) logStderr(messageID string, s *phpfpm.Stderr) {
	if d.log.GetLevel() > zerolog.WarnLevel {
		return
	}
	for _, msg := range s.Messages() {
		d.log.Warn().Str("message_id", messageID).Str("source", "worker").Str("stderr", msg).Msg("worker stderr")
	}
	if n, b := s.Dropped(); n > 0 || b > 0 {
		d.log.Warn().Str("message_id", messageID).Str("source", "worker").Int("dropped_messages", n).Int64("dropped_bytes", b).
			Msg("worker stderr: more than the per-job bound; the rest was not logged")
	}
}

// attemptOf numbers the delivery: 1 for a new job, then what the daemon
// wrote in the retry copy. Redeliveries after a crash or a requeue keep the
// attempt's number: they were not the job's failures.
func attemptOf(m amqp.Delivery) int {
	n, _ := outcome.Int(m.Headers[outcome.HeaderAttempt])
	if n < 1 {
		return 1
	}
	return int(min(n, 1<<20))
}

// maxErrText bounds the last error in a copy's headers, in bytes.
const maxErrText = 1024

// errText returns err's text, cut to at most maxErrText bytes on a
// character boundary; "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) > maxErrText {
		cut := maxErrText
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// settle logs a failed ack, nack or reject. Such a failure means the channel
// is gone; the broker requeues every unsettled delivery of a dead channel, so
// nothing is lost and nothing else is to be done.
func settle(log zerolog.Logger, err error) {
	if err != nil && !errors.Is(err, amqp.ErrClosed) {
		log.Warn().Err(err).Msg("settle delivery")
	} else if err != nil {
		log.Debug().Err(err).Msg("settle delivery: channel closed, the broker requeues it")
	}
}

// poolDown reports whether the pool refuses connections now. It tells a
// job that broke because php-fpm went away (a restart kills its children
// mid-request) from a job that broke on its own.
func (d *Dispatcher) poolDown(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, d.poolCheck)
	defer cancel()
	return errors.Is(d.pool.Ping(ctx), fastcgi.ErrUnavailable)
}
