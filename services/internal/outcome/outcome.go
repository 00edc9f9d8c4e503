// Package outcome is the vocabulary shared by the packages that settle jobs
// and those that report on them: how a delivery was settled, why a job was
// dead-lettered, and the AMQP header names the daemon writes. It imports
// nothing of the project, so logs, metrics, health and the command-line
// tools can depend on it without depending on the code that decides.
package outcome

import (
	"errors"
	"strconv"
	"time"
	"unicode/utf8"
)

// Outcome says how a delivery was settled.
type Outcome int

// The outcomes of handling one delivery.
const (
	// Succeeded: the worker answered 2xx and reported no fatal error; the
	// delivery was acked.
	Succeeded Outcome = iota
	// Retried: the attempt failed in a way another attempt may fix (a 5xx
	// answer, a PHP fatal error, a timeout, a broken connection); a copy
	// waits in a retry queue and the delivery was acked.
	Retried
	// DeadLettered: the job can never succeed (a malformed or oversized
	// message, a 4xx answer from the script, attempts exhausted); a copy
	// went to the dead-letter queue and the delivery was acked.
	DeadLettered
	// Requeued: the job did not run, through no fault of its own (the pool
	// was unavailable or could not run the script, the daemon is shutting
	// down); it went back to its queue with no attempt counted.
	Requeued
	// Delayed: the job is not due yet (its HeaderDue is more than a
	// second ahead); a copy waits in a delay queue and the delivery was
	// acked. It did not run and no attempt was counted.
	Delayed
	// AlreadyDone: the broker delivered the job again after its channel
	// closed while an attempt ran here (a consumer acknowledgement
	// timeout, a lost connection), and that attempt had ended: succeeded,
	// or its retry or dead-letter copy published. The delivery was acked
	// and the job did not run again.
	AlreadyDone
)

var names = [...]string{"succeeded", "retried", "dead-lettered", "requeued", "delayed", "already-done"}

// String returns the outcome's name as it appears in logs and metrics.
func (o Outcome) String() string {
	if o >= 0 && int(o) < len(names) {
		return names[o]
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// StderrExcerpt bounds Result.Stderr, in bytes.
const StderrExcerpt = 2 << 10

// Excerpt returns the start of s, at most StderrExcerpt bytes, cut at a
// rune's start so that it stays valid UTF-8 if s was.
func Excerpt(s string) string {
	n := StderrExcerpt
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Reasons for dead-lettering, written in the HeaderReason header.
const (
	ReasonMalformed    = "malformed"          // not a job: not a JSON object
	ReasonTooLarge     = "too-large"          // over MAX_MESSAGE_SIZE
	ReasonFormMismatch = "form-mismatch"      // PHP's form parser would change it: a field name it renames, or a limit of its own
	ReasonRejected     = "rejected"           // the worker answered 4xx
	ReasonExhausted    = "attempts-exhausted" // the job's attempts (MAX_ATTEMPTS, or its own limit) failed
	ReasonFailed       = "failed"             // the worker answered Fpmq-Fail: never run it again
	ReasonPanic        = "panic"              // the daemon failed on this message
)

// Reasons returns every Reason constant, in the order of their declaration,
// so that metrics can create a series for each before any job is
// dead-lettered. The slice is new at each call.
func Reasons() []string {
	return []string{ReasonMalformed, ReasonTooLarge, ReasonFormMismatch, ReasonRejected, ReasonExhausted, ReasonFailed, ReasonPanic}
}

// Headers the daemon sets on the copies it publishes.
const (
	HeaderAttempt    = "x-fpmq-attempt"     // the number of the next attempt
	HeaderAttempts   = "x-fpmq-attempts"    // on dead letters: attempts made
	HeaderReason     = "x-fpmq-reason"      // on dead letters: one of the Reason constants
	HeaderLastStatus = "x-fpmq-last-status" // the worker's last status, 0 if none
	HeaderLastError  = "x-fpmq-last-error"  // the last failure, as text
	HeaderQueue      = "x-fpmq-queue"       // on dead letters: the job queue
	// HeaderMaxAttempts is the job's own limit of attempts (an integer,
	// 1 to MaxJobAttempts), which replaces the route's MAX_ATTEMPTS: set by
	// the worker's Fpmq-Max-Attempts answer and carried by every copy.
	HeaderMaxAttempts = "x-fpmq-max-attempts"
	// HeaderReplayOf, set by daemon dead replay on a job it brings back, is
	// the traceparent the dead job had (W3C Trace Context): the replayed
	// job runs in a trace of its own, linked to that one.
	HeaderReplayOf = "x-fpmq-replay-of"
)

// MaxJobAttempts is the largest limit of attempts a job may have of its own
// (HeaderMaxAttempts).
const MaxJobAttempts = 1000

// HeaderDue, set by the caller on a job published with a delay, is the
// earliest time the job may run, in Unix milliseconds (an integer).
const HeaderDue = "x-fpmq-due"

// Due returns the time that a HeaderDue value v says, and whether v is one.
func Due(v any) (time.Time, bool) {
	ms, ok := Int(v)
	if !ok {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

// HeaderTimestampMs is the time a job was published in Unix milliseconds
// (an integer): the name RabbitMQ's own timestamp interceptor gives it
// (rabbitmq.conf's message_interceptors.incoming.set_header_timestamp,
// RabbitMQ 3.12 and later). fpmq's publishers write it, because the AMQP
// timestamp property holds whole seconds.
const HeaderTimestampMs = "timestamp_in_ms"

// WaitStart returns when a delivery's wait in the queue began: its due
// time (HeaderDue) when it has one later than its publication, else its
// publication, from HeaderTimestampMs when that holds one, else from
// timestamp, the AMQP timestamp property (whole seconds). It is the zero
// time when the message says nothing of either.
func WaitStart(timestamp time.Time, headers map[string]any) time.Time {
	published := timestamp
	if ms, ok := Int(headers[HeaderTimestampMs]); ok && ms > 0 {
		published = time.UnixMilli(ms)
	}
	if due, ok := Due(headers[HeaderDue]); ok && due.After(published) {
		return due
	}
	return published
}

// ErrPoolUnavailable means the php-fpm pool could not take a job: its
// socket refused the connection, it answered "overloaded", or php-fpm
// itself refused to run the script (script not found, access denied). The
// job did not run and was requeued with no attempt counted; the consumer
// pauses until the pool answers again. Errors wrapping it say which.
var ErrPoolUnavailable = errors.New("php-fpm pool unavailable")

// Result is what became of one delivery, for logs and metrics.
type Result struct {
	Outcome Outcome
	Attempt int    // the attempt's number, from 1
	Status  int    // the worker's HTTP status; 0 if it did not answer
	Reason  string // why the job was dead-lettered, one of the Reason constants
	// MaxAttempts is the job's own limit of attempts in all, which
	// replaces the route's MAX_ATTEMPTS: from its HeaderMaxAttempts, or the
	// worker's Fpmq-Max-Attempts answer. 0 when it has none.
	MaxAttempts int
	// RetryIn is the wait before the next attempt that the worker asked
	// for (Fpmq-Retry-In), whole seconds, when RetryAsked; else the
	// route's backoff applies.
	RetryIn    time.Duration
	RetryAsked bool
	// Duration is the whole handling, settling included.
	Duration time.Duration
	// Ran says whether the job was sent to php-fpm; WorkerTime is how long
	// php-fpm took to answer, or to fail.
	Ran        bool
	WorkerTime time.Duration
	// Fatal says the worker reported a PHP fatal error on stderr.
	Fatal bool
	// StderrDropped counts the worker's stderr messages not logged.
	StderrDropped int
	// Stderr is the start of the worker's stderr messages, one per line,
	// at most StderrExcerpt bytes; empty when it wrote none.
	Stderr string
	// CopyFailures counts the broker's refusals of this job's retry or
	// dead-letter copy.
	CopyFailures int
	Err          error // what failed, if anything
}

// Int returns an AMQP header value of any integer type as an int64, and
// whether it was one. Brokers and clients encode the same header with
// different widths (RabbitMQ's x-delivery-count is a long, PHP clients
// often send shorts), so readers accept them all.
func Int(v any) (int64, bool) {
	switch v := v.(type) {
	case int64:
		return v, true
	case int32:
		return int64(v), true
	case int16:
		return int64(v), true
	case int8:
		return int64(v), true
	case int:
		return int64(v), true
	case uint8:
		return int64(v), true
	case uint16:
		return int64(v), true
	case uint32:
		return int64(v), true
	}
	return 0, false
}
