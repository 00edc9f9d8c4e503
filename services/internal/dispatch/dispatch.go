// Package dispatch runs one job message on the php-fpm pool and settles it
// with the broker: ack on success, a delayed retry on a failure that another
// attempt may fix, the dead-letter queue for a job that can never succeed,
// and a plain requeue when the failure was not the job's fault.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"path"
	"runtime/debug"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/rs/zerolog"

	"github.com/fpmq/fpmq/services/internal/backoff"
	"github.com/fpmq/fpmq/services/internal/broker"
	"github.com/fpmq/fpmq/services/internal/fastcgi"
	"github.com/fpmq/fpmq/services/internal/job"
)

// Outcome says how a delivery was settled.
type Outcome int

// The outcomes of Handle.
const (
	// Succeeded: the worker answered 2xx; the delivery was acked.
	Succeeded Outcome = iota
	// Retried: the attempt failed in a way another attempt may fix (a 5xx
	// answer, a timeout, a broken connection); a copy waits in a retry
	// queue and the delivery was acked.
	Retried
	// DeadLettered: the job can never succeed (a malformed or oversized
	// message, a 4xx answer, attempts exhausted); a copy went to the
	// dead-letter queue and the delivery was acked.
	DeadLettered
	// Requeued: the job did not really run, through no fault of its own
	// (the pool was unavailable, the daemon is shutting down, the broker
	// did not take a retry copy); it went back to its queue with no
	// attempt counted.
	Requeued
)

var outcomeNames = [...]string{"succeeded", "retried", "dead-lettered", "requeued"}

// String returns the outcome's name as it appears in logs and metrics.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Reasons for dead-lettering, in the x-fpmq-reason header.
const (
	ReasonMalformed = "malformed"          // not a job: not JSON, no integer number
	ReasonTooLarge  = "too-large"          // over Config.MaxMessageSize
	ReasonRejected  = "rejected"           // the worker answered 4xx
	ReasonExhausted = "attempts-exhausted" // Config.MaxAttempts failed attempts
	ReasonPanic     = "panic"              // the daemon failed on this message
)

// Headers the daemon sets on the copies it publishes.
const (
	HeaderAttempt    = "x-fpmq-attempt"     // the number of the next attempt
	HeaderAttempts   = "x-fpmq-attempts"    // on dead letters: attempts made
	HeaderReason     = "x-fpmq-reason"      // on dead letters: one of the Reason constants
	HeaderLastStatus = "x-fpmq-last-status" // the worker's last status, 0 if none
	HeaderLastError  = "x-fpmq-last-error"  // the last failure, as text
	HeaderQueue      = "x-fpmq-queue"       // on dead letters: the job queue
)

// ErrPoolUnavailable means the pool could not take the job (its socket
// refused the connection, or it answered "overloaded"); the job was requeued.
var ErrPoolUnavailable = errors.New("php-fpm pool unavailable")

// Publisher sends a message to a queue and returns once the broker
// confirmed it; broker.Publisher is one.
type Publisher interface {
	Publish(ctx context.Context, queue string, msg amqp.Publishing) error
}

// Config is what a Dispatcher needs besides its FastCGI client.
type Config struct {
	// Script is the absolute path of the worker script in the php-fpm
	// container. It comes from configuration only, never from a message.
	Script string
	// Timeout bounds one attempt, connect to last byte.
	Timeout time.Duration
	// MaxAttempts is how many times a job runs before it is dead-lettered.
	MaxAttempts int
	// MaxMessageSize bounds a message's body, checked before decoding.
	MaxMessageSize int
	// Topology names the retry and dead-letter queues; its RetryDelays
	// hold MaxAttempts-1 delays.
	Topology broker.Topology
	// PingPath is the pool's ping path (php-fpm's ping.path).
	PingPath string
	// FailurePause is the wait before requeueing a job whose retry or
	// dead-letter copy the broker did not take, so that such a job cannot
	// cycle in a hot loop.
	FailurePause time.Duration
}

// Result is the outcome of one delivery, for logs and metrics.
type Result struct {
	Outcome  Outcome
	Number   int64
	Attempt  int
	Status   int           // the worker's HTTP status; 0 if it did not answer
	Reason   string        // why a job was dead-lettered
	Duration time.Duration // the whole handling, settling included
	// Ran says whether the job was sent to php-fpm; WorkerTime is how long
	// php-fpm took to answer, or to fail.
	Ran        bool
	WorkerTime time.Duration
	Err        error // what failed, if anything
}

// Dispatcher hands job messages to the php-fpm pool. It is safe for
// concurrent use; the caller bounds the concurrency.
type Dispatcher struct {
	client *fastcgi.Client
	cfg    Config
	log    zerolog.Logger
	// fixed holds the CGI params that are the same for every job.
	fixed []fastcgi.Param
}

// New returns a Dispatcher that sends jobs through client.
func New(client *fastcgi.Client, cfg Config, log zerolog.Logger) *Dispatcher {
	name := "/" + path.Base(cfg.Script)
	return &Dispatcher{
		client: client,
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
			{Name: "CONTENT_TYPE", Value: "application/x-www-form-urlencoded"},
		},
	}
}

// Handle runs the job in m and settles m, publishing retry and dead-letter
// copies through pub before acking the original, so that a job is never
// lost between the two. It returns once m is settled, or once settling
// failed because the channel is gone (the broker then requeues m itself).
// Cancelling ctx aborts the job, which is then requeued.
// Handle logs one line per job; the Result says the same for metrics.
func (d *Dispatcher) Handle(ctx context.Context, m amqp.Delivery, pub Publisher) (res Result) {
	start := time.Now()
	res.Attempt = attemptOf(m)
	// One logger for all jobs, with the job's fields added to each event:
	// a child logger per job would cost an allocation on every job.
	log := d.log
	defer func() {
		// No message may crash the daemon: whatever went wrong is this
		// message's problem, and it goes to the dead-letter queue.
		if p := recover(); p != nil {
			log.Error().Str("message_id", m.MessageId).Str("panic", fmt.Sprint(p)).Bytes("stack", debug.Stack()).Msg("panic while handling a job")
			res.Err = fmt.Errorf("panic: %v", p)
			res.Reason = ReasonPanic
			res.Outcome = d.rescue(ctx, m, pub, res)
		}
		res.Duration = time.Since(start)
		d.logResult(m.MessageId, res)
	}()

	if len(m.Body) > d.cfg.MaxMessageSize {
		res.Reason = ReasonTooLarge
		res.Err = fmt.Errorf("message of %d bytes exceeds the limit of %d", len(m.Body), d.cfg.MaxMessageSize)
		res.Outcome = d.deadLetter(ctx, m, pub, res)
		return res
	}
	j, err := job.Decode(m.Body)
	if err != nil {
		res.Reason, res.Err = ReasonMalformed, err
		res.Outcome = d.deadLetter(ctx, m, pub, res)
		return res
	}
	res.Number = j.Number

	sent := time.Now()
	resp, err := d.run(ctx, m, j, res.Attempt)
	res.Ran, res.WorkerTime = true, time.Since(sent)
	if resp != nil {
		res.Status = resp.Status
		forwardStderr(log, m.MessageId, j.Number, resp.Stderr)
	}
	switch {
	case err == nil && resp.Status >= 200 && resp.Status < 300:
		res.Outcome = Succeeded
		settle(log, m.Ack(false)) // false: this delivery only
	case ctx.Err() != nil:
		// Shutdown cut the job short: not the job's fault.
		res.Err = fmt.Errorf("aborted by shutdown: %w", err)
		res.Outcome = Requeued
		settle(log, m.Nack(false, true)) // false: this delivery only; true: requeue
	case errors.Is(err, fastcgi.ErrUnavailable) || (err != nil && d.poolDown(ctx)):
		res.Err = fmt.Errorf("%w: %w", ErrPoolUnavailable, err)
		res.Outcome = Requeued
		settle(log, m.Nack(false, true)) // false: this delivery only; true: requeue
	case err == nil && resp.Status >= 400 && resp.Status < 500:
		res.Reason = ReasonRejected
		res.Err = fmt.Errorf("worker answered status %d", resp.Status)
		res.Outcome = d.deadLetter(ctx, m, pub, res)
	default:
		if err == nil {
			err = fmt.Errorf("worker answered status %d", resp.Status)
		}
		res.Err = err
		if res.Attempt >= d.cfg.MaxAttempts {
			res.Reason = ReasonExhausted
			res.Outcome = d.deadLetter(ctx, m, pub, res)
		} else {
			res.Outcome = d.retry(ctx, m, pub, res)
		}
	}
	return res
}

func (d *Dispatcher) run(ctx context.Context, m amqp.Delivery, j job.Job, attempt int) (*fastcgi.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()

	body := j.Form()
	params := make([]fastcgi.Param, 0, len(d.fixed)+5+len(m.Headers))
	params = append(params, d.fixed...)
	params = append(params,
		fastcgi.Param{Name: "CONTENT_LENGTH", Value: strconv.Itoa(len(body))},
		fastcgi.Param{Name: "HTTP_X_MESSAGE_ID", Value: cgiValue(m.MessageId)},
		fastcgi.Param{Name: "HTTP_X_ATTEMPT", Value: strconv.Itoa(attempt)},
		fastcgi.Param{Name: "HTTP_X_REDELIVERED", Value: boolParam(m.Redelivered)},
	)
	if !m.Timestamp.IsZero() {
		params = append(params, fastcgi.Param{Name: "HTTP_X_TIMESTAMP", Value: strconv.FormatInt(m.Timestamp.Unix(), 10)})
	}
	params = appendHeaderParams(params, m.Headers)
	resp, err := d.client.Do(ctx, &fastcgi.Request{Params: params, Body: body})
	if err != nil {
		return nil, fmt.Errorf("fastcgi request: %w", err)
	}
	return resp, nil
}

// retry publishes a copy of m to the retry queue of its attempt, with a
// jittered expiration, then acks m.
func (d *Dispatcher) retry(ctx context.Context, m amqp.Delivery, pub Publisher, res Result) Outcome {
	level := min(res.Attempt, len(d.cfg.Topology.RetryDelays)) - 1
	delay := backoff.Jitter(d.cfg.Topology.RetryDelays[level])
	msg := copyOf(m)
	msg.Headers[HeaderAttempt] = int64(res.Attempt + 1)
	msg.Headers[HeaderLastStatus] = int64(res.Status)
	msg.Headers[HeaderLastError] = errText(res.Err)
	msg.Expiration = strconv.FormatInt(max(delay.Milliseconds(), 1), 10)
	return d.forward(ctx, m, pub, d.cfg.Topology.RetryQueue(level), msg, Retried)
}

// deadLetter publishes a copy of m, with the reason and the last failure in
// its headers, to the dead-letter queue, then acks m.
func (d *Dispatcher) deadLetter(ctx context.Context, m amqp.Delivery, pub Publisher, res Result) Outcome {
	msg := copyOf(m)
	// A replayed dead job starts again from its first attempt.
	delete(msg.Headers, HeaderAttempt)
	msg.Headers[HeaderAttempts] = int64(res.Attempt)
	msg.Headers[HeaderReason] = res.Reason
	msg.Headers[HeaderLastStatus] = int64(res.Status)
	msg.Headers[HeaderLastError] = errText(res.Err)
	msg.Headers[HeaderQueue] = d.cfg.Topology.Queue
	return d.forward(ctx, m, pub, d.cfg.Topology.DeadQueue, msg, DeadLettered)
}

// forward publishes msg to queue and acks m once the broker confirmed msg.
// If the broker does not take msg, m goes back to its queue after a pause.
func (d *Dispatcher) forward(ctx context.Context, m amqp.Delivery, pub Publisher, queue string, msg amqp.Publishing, o Outcome) Outcome {
	// The copy must reach the broker even during a shutdown: only the
	// publish's own deadline bounds it.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := pub.Publish(pctx, queue, msg); err != nil {
		d.log.Warn().Err(err).Str("message_id", m.MessageId).Str("queue", queue).Msg("broker did not take the copy; requeueing the job")
		backoff.Sleep(ctx, d.cfg.FailurePause)
		settle(d.log, m.Nack(false, true)) // false: this delivery only; true: requeue
		return Requeued
	}
	settle(d.log, m.Ack(false)) // false: this delivery only
	return o
}

// rescue dead-letters m after a panic. Should that panic too, m goes back
// to its queue after a pause: the daemon survives either way.
func (d *Dispatcher) rescue(ctx context.Context, m amqp.Delivery, pub Publisher, res Result) (o Outcome) {
	defer func() {
		if p := recover(); p != nil {
			d.log.Error().Str("panic", fmt.Sprint(p)).Str("message_id", m.MessageId).Msg("panic while dead-lettering; requeueing the job")
			backoff.Sleep(ctx, d.cfg.FailurePause)
			settle(d.log, m.Nack(false, true)) // false: this delivery only; true: requeue
			o = Requeued
		}
	}()
	return d.deadLetter(ctx, m, pub, res)
}

// copyOf returns a publishing with m's body, properties and headers.
func copyOf(m amqp.Delivery) amqp.Publishing {
	headers := make(amqp.Table, len(m.Headers)+6)
	for k, v := range m.Headers {
		headers[k] = v
	}
	return amqp.Publishing{
		Headers:         headers,
		ContentType:     m.ContentType,
		ContentEncoding: m.ContentEncoding,
		DeliveryMode:    amqp.Persistent,
		Priority:        m.Priority,
		CorrelationId:   m.CorrelationId,
		ReplyTo:         m.ReplyTo,
		MessageId:       m.MessageId,
		Timestamp:       m.Timestamp,
		Type:            m.Type,
		AppId:           m.AppId,
		Body:            m.Body,
	}
}

func (d *Dispatcher) logResult(messageID string, res Result) {
	var e *zerolog.Event
	switch res.Outcome {
	case Succeeded:
		e = d.log.Info()
	case DeadLettered:
		e = d.log.Error()
	default:
		e = d.log.Warn()
	}
	if e == nil {
		return // level disabled
	}
	e = e.Str("message_id", messageID).Int("attempt", res.Attempt)
	if res.Reason != ReasonMalformed && res.Reason != ReasonTooLarge {
		e = e.Int64("number", res.Number)
	}
	if res.Status != 0 {
		e = e.Int("status", res.Status)
	}
	if res.Reason != "" {
		e = e.Str("reason", res.Reason)
	}
	if res.Err != nil {
		e = e.Err(res.Err)
	}
	e.Dur("duration", res.Duration).Str("outcome", res.Outcome.String()).Msg("job " + res.Outcome.String())
}

// attemptOf numbers the delivery: 1 for a new job, then what the daemon
// wrote in the retry copy. Redeliveries after a crash or a requeue keep the
// attempt's number: they were not the job's failures.
func attemptOf(m amqp.Delivery) int {
	var n int64
	switch v := m.Headers[HeaderAttempt].(type) {
	case int64:
		n = v
	case int32:
		n = int64(v)
	case int16:
		n = int64(v)
	case int8:
		n = int64(v)
	case int:
		n = int64(v)
	}
	if n < 1 {
		return 1
	}
	return int(min(n, 1<<20))
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) > 1024 {
		s = s[:1024]
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
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return errors.Is(d.Ping(ctx, d.cfg.PingPath), fastcgi.ErrUnavailable)
}

// Ping asks the pool for its ping path (php-fpm's ping.path) and returns nil
// if it answered 200.
func (d *Dispatcher) Ping(ctx context.Context, path string) error {
	resp, err := d.Get(ctx, path, "")
	if err != nil {
		return fmt.Errorf("ping %s: %w", path, err)
	}
	if resp.Status != 200 {
		return fmt.Errorf("ping %s: status %d", path, resp.Status)
	}
	return nil
}

// Get sends the pool a GET request for path, such as its status page, which
// php-fpm serves itself whatever SCRIPT_FILENAME says.
func (d *Dispatcher) Get(ctx context.Context, path, query string) (*fastcgi.Response, error) {
	return d.client.Do(ctx, &fastcgi.Request{Params: []fastcgi.Param{
		{Name: "GATEWAY_INTERFACE", Value: "CGI/1.1"},
		{Name: "SERVER_PROTOCOL", Value: "HTTP/1.1"},
		{Name: "REQUEST_METHOD", Value: "GET"},
		{Name: "SCRIPT_NAME", Value: path},
		{Name: "SCRIPT_FILENAME", Value: path},
		{Name: "REQUEST_URI", Value: path},
		{Name: "QUERY_STRING", Value: query},
	}})
}
