package dispatch

import (
	"context"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/fpmq/fpmq/services/internal/fastcgi"
	"github.com/fpmq/fpmq/services/internal/outcome"
	"github.com/fpmq/fpmq/services/internal/tracing"
)

// fpmq's own span attributes, beside OpenTelemetry's messaging ones. The
// daemon's README ("Tracing") lists them all.
const (
	AttrAttempt     = attribute.Key("fpmq.attempt")        // int: this attempt, from 1
	AttrMaxAttempts = attribute.Key("fpmq.max_attempts")   // int: the job's own limit, when it has one
	AttrJobName     = attribute.Key("fpmq.job.name")       // string: the AMQP type
	AttrQueueWait   = attribute.Key("fpmq.queue.wait_ms")  // int: ms from publication (or due time) to the start of this delivery
	AttrOutcome     = attribute.Key("fpmq.outcome")        // string: outcome.Outcome's name
	AttrReason      = attribute.Key("fpmq.reason")         // string: why it was dead-lettered
	AttrStatus      = attribute.Key("fpmq.php_fpm.status") // int: the worker's HTTP status
	AttrWorkerTime  = attribute.Key("fpmq.php_fpm.duration_ms")
	// AttrLinkType says why a span links to another trace: "replay-of"
	// for the trace of the job that daemon dead replay brought back.
	AttrLinkType = attribute.Key("fpmq.link.type")
)

// The CGI params of the attempt span's context, which PHP instrumentation
// reads as the W3C headers of an incoming HTTP request.
const (
	paramTraceparent = "HTTP_TRACEPARENT"
	paramTracestate  = "HTTP_TRACESTATE"
)

// malformedLogBurst is how many lines about malformed traceparent headers
// the daemon logs a minute at most: a producer that writes them on every
// job must not flood the log.
const malformedLogBurst = 5

// startSpan starts the span of the delivery m (kind consumer, named
// "process QUEUE"), started at start: a child of the producer's context in
// m's headers, or the root of a new trace when they hold none or a
// malformed one (logged, at most malformedLogBurst lines a minute); linked
// to the original trace of a replayed job. It returns ctx with the span.
func (d *Dispatcher) startSpan(ctx context.Context, m amqp.Delivery, start time.Time) (context.Context, trace.Span) {
	parentCtx, parent := tracing.Extract(ctx, m.Headers)
	if parent == tracing.MalformedParent {
		d.traceLog.Warn().Str("message_id", m.MessageId).Str("traceparent", clipped(tracing.Headers(m.Headers).Get(tracing.HeaderTraceparent))).
			Msg("malformed traceparent header: the job runs in a new trace (at most 5 such lines a minute)")
	}
	if !d.traced {
		// The no-op tracer passes the parent's context on, and needs
		// nothing more.
		return d.tracer.Start(parentCtx, "")
	}
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithTimestamp(start),
		trace.WithAttributes(d.startAttributes(m, start)...),
	}
	if v := tracing.Headers(m.Headers).Get(outcome.HeaderReplayOf); v != "" {
		if sc, err := tracing.Parse(v, ""); err == nil {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{AttrLinkType.String("replay-of")}}))
		}
	}
	return d.tracer.Start(parentCtx, d.spanName, opts...)
}

// startAttributes returns the attributes of m's span known at its start:
// OpenTelemetry's messaging conventions (the destination is the queue:
// jobs are published to the default exchange with the queue's name as
// routing key) and fpmq's.
func (d *Dispatcher) startAttributes(m amqp.Delivery, start time.Time) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 12)
	attrs = append(attrs,
		semconv.MessagingSystemRabbitMQ,
		semconv.MessagingOperationTypeProcess,
		semconv.MessagingOperationName("process"),
		semconv.MessagingDestinationName(d.cfg.Topology.Queue),
		semconv.MessagingRabbitMQDestinationRoutingKey(m.RoutingKey),
		semconv.MessagingMessageID(m.MessageId),
		semconv.MessagingMessageBodySize(len(m.Body)),
		AttrAttempt.Int(attemptOf(m)),
	)
	if m.CorrelationId != "" {
		attrs = append(attrs, semconv.MessagingMessageConversationID(m.CorrelationId))
	}
	if m.Type != "" {
		attrs = append(attrs, AttrJobName.String(m.Type))
	}
	if since := outcome.WaitStart(m.Timestamp, m.Headers); !since.IsZero() && !since.After(start) {
		attrs = append(attrs, AttrQueueWait.Int64(start.Sub(since).Milliseconds()))
	}
	return attrs
}

// endSpan ends span with what became of the delivery: fpmq's outcome,
// reason and the worker's status, and an error status for a failed
// attempt (retried or dead-lettered).
func endSpan(span trace.Span, res outcome.Result) {
	if !span.IsRecording() {
		span.End()
		return
	}
	// One SetAttributes call: each grows the span's attribute list.
	attrs := make([]attribute.KeyValue, 0, 7)
	// The attempt is the start's (Handle sets it once): not again.
	attrs = append(attrs, AttrOutcome.String(res.Outcome.String()))
	if res.MaxAttempts > 0 {
		attrs = append(attrs, AttrMaxAttempts.Int(res.MaxAttempts))
	}
	if res.Status != 0 {
		attrs = append(attrs, AttrStatus.Int(res.Status))
	}
	if res.Ran {
		attrs = append(attrs, AttrWorkerTime.Int64(res.WorkerTime.Milliseconds()))
	}
	switch res.Outcome {
	case outcome.Retried:
		attrs = append(attrs, semconv.ErrorTypeKey.String("attempt-failed"))
		span.SetStatus(codes.Error, errText(res.Err))
	case outcome.DeadLettered:
		attrs = append(attrs, AttrReason.String(res.Reason), semconv.ErrorTypeKey.String(res.Reason))
		span.SetStatus(codes.Error, errText(res.Err))
	}
	span.SetAttributes(attrs...)
	span.End()
}

// appendTraceParams adds the context of the delivery's span in ctx as
// HTTP_TRACEPARENT and HTTP_TRACESTATE, which PHP instrumentation reads as
// an incoming request's: the script's own spans join the job's trace.
// Without a valid context (tracing off and no producer's context) it adds
// none.
func appendTraceParams(params []fastcgi.Param, ctx context.Context) []fastcgi.Param {
	traceparent, tracestate := tracing.Format(trace.SpanContextFromContext(ctx))
	if traceparent == "" {
		return params
	}
	params = append(params, fastcgi.Param{Name: paramTraceparent, Value: traceparent})
	if tracestate != "" {
		params = append(params, fastcgi.Param{Name: paramTracestate, Value: cgiValue(tracestate)})
	}
	return params
}

// carryTrace makes a copy's headers h keep the job in its trace. A copy of
// a message with a valid traceparent keeps it: every attempt is a child of
// the producer's span. Any other copy carries the context of this
// delivery's span in ctx, so that the job's later attempts join the trace
// this one started rather than each starting one. With no span context
// (tracing off and no producer's context) h is left as it is.
func carryTrace(ctx context.Context, h amqp.Table) {
	if _, parent := tracing.Extract(context.Background(), h); parent == tracing.ValidParent {
		return
	}
	if trace.SpanContextFromContext(ctx).IsValid() {
		tracing.Inject(ctx, h)
	}
}

// logTrace adds the trace and span ids of sc to e when tracing is on.
func (d *Dispatcher) logTrace(e *zerolog.Event, sc trace.SpanContext) *zerolog.Event {
	if !d.traced || !sc.IsValid() {
		return e
	}
	tid, sid := sc.TraceID(), sc.SpanID()
	// Hex writes the ids as their String methods do, without a copy.
	return e.Hex("trace_id", tid[:]).Hex("span_id", sid[:])
}

// clipped returns s cut to 128 bytes, for a log line.
func clipped(s string) string {
	if len(s) > 128 {
		return s[:128] + "..."
	}
	return s
}
