// Package dispatch runs one job message on the php-fpm pool and settles it
// with the broker: ack on success, requeue after a pause on a failure that a
// retry may fix, reject when the message can never become a job.
package dispatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/rs/zerolog"

	"github.com/fpmq/fpmq/services/internal/fastcgi"
	"github.com/fpmq/fpmq/services/internal/job"
)

// Outcome says how a delivery was settled.
type Outcome int

// The outcomes of Handle.
const (
	// Succeeded: the worker answered 2xx and the delivery was acked.
	Succeeded Outcome = iota
	// Requeued: the worker failed, timed out or could not be reached; the
	// delivery went back to the queue after Config.RetryDelay.
	Requeued
	// Rejected: the message is not a job; it was rejected without requeue.
	Rejected
)

// String returns the outcome's name as it appears in logs.
func (o Outcome) String() string {
	switch o {
	case Succeeded:
		return "succeeded"
	case Requeued:
		return "requeued"
	case Rejected:
		return "rejected"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Config is what a Dispatcher needs besides its FastCGI client.
type Config struct {
	// Script is the absolute path of the worker script in the php-fpm
	// container. It comes from configuration only, never from a message.
	Script string
	// Timeout bounds one FastCGI request, connect to last byte.
	Timeout time.Duration
	// RetryDelay is the pause before a failed job goes back to the queue, so
	// that a failing job never cycles in a hot loop.
	RetryDelay time.Duration
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

// Handle runs the job in m and settles m. It returns once m is settled, or
// once settling failed because the channel is gone (the broker then requeues
// m by itself). Cancelling ctx aborts the request and skips the retry pause:
// the job is requeued at once.
func (d *Dispatcher) Handle(ctx context.Context, m amqp.Delivery) Outcome {
	start := time.Now()
	log := d.log.With().Str("message_id", m.MessageId).Logger()

	j, err := job.Decode(m.Body)
	if err != nil {
		log.Warn().Err(err).Int("bytes", len(m.Body)).Str("outcome", Rejected.String()).Msg("malformed message rejected")
		settle(log, m.Reject(false)) // false: do not requeue
		return Rejected
	}
	log = log.With().Int64("number", j.Number).Logger()

	attempt := attemptOf(m)
	resp, err := d.run(ctx, m, j, attempt)
	elapsed := time.Since(start)
	if resp != nil {
		forwardStderr(log, resp.Stderr)
	}

	event := func(e *zerolog.Event, o Outcome) *zerolog.Event {
		e = e.Int("attempt", attempt).Dur("duration", elapsed).Str("outcome", o.String())
		if resp != nil {
			e = e.Int("status", resp.Status)
		}
		return e
	}

	if err == nil && resp.Status >= 200 && resp.Status < 300 {
		event(log.Info(), Succeeded).Msg("job done")
		settle(log, m.Ack(false)) // false: this delivery only
		return Succeeded
	}
	if err == nil {
		err = fmt.Errorf("worker answered status %d", resp.Status)
	}
	event(log.Warn().Err(err), Requeued).Dur("retry_in", d.cfg.RetryDelay).Msg("job failed")
	pause(ctx, d.cfg.RetryDelay)
	settle(log, m.Nack(false, true)) // false: this delivery only; true: requeue
	return Requeued
}

func (d *Dispatcher) run(ctx context.Context, m amqp.Delivery, j job.Job, attempt int) (*fastcgi.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()

	body := j.Form()
	params := make([]fastcgi.Param, 0, len(d.fixed)+6)
	params = append(params, d.fixed...)
	params = append(params,
		fastcgi.Param{Name: "CONTENT_LENGTH", Value: strconv.Itoa(len(body))},
		fastcgi.Param{Name: "HTTP_X_MESSAGE_ID", Value: m.MessageId},
		fastcgi.Param{Name: "HTTP_X_ATTEMPT", Value: strconv.Itoa(attempt)},
		fastcgi.Param{Name: "HTTP_X_REDELIVERED", Value: boolParam(m.Redelivered)},
	)
	if !m.Timestamp.IsZero() {
		params = append(params, fastcgi.Param{Name: "HTTP_X_TIMESTAMP", Value: strconv.FormatInt(m.Timestamp.Unix(), 10)})
	}
	resp, err := d.client.Do(ctx, &fastcgi.Request{Params: params, Body: body})
	if err != nil {
		return nil, fmt.Errorf("fastcgi request: %w", err)
	}
	return resp, nil
}

// attemptOf numbers the delivery: 1 for a first delivery. Quorum queues count
// earlier deliveries exactly in x-delivery-count; classic queues only say
// that the message was delivered before, so a redelivery counts as 2.
func attemptOf(m amqp.Delivery) int {
	if n, ok := m.Headers["x-delivery-count"].(int64); ok && n >= 0 {
		return int(n) + 1
	}
	if m.Redelivered {
		return 2
	}
	return 1
}

func boolParam(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// forwardStderr logs each line the worker wrote to its FastCGI stderr.
func forwardStderr(log zerolog.Logger, stderr []byte) {
	for len(stderr) > 0 {
		line, rest, _ := bytes.Cut(stderr, []byte{'\n'})
		stderr = rest
		line = bytes.TrimRight(line, "\r")
		if len(line) > 0 {
			log.Warn().Str("source", "worker").Bytes("stderr", line).Msg("worker stderr")
		}
	}
}

// pause waits for d or until ctx is done.
func pause(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
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
