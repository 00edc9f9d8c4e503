package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/fpmq/fpmq/services/internal/tracing"
)

// tracingFlushTimeout bounds how long the caller tries to export its
// spans once the jobs are settled: an unreachable receiver delays its exit
// by this much at most, and never changes its exit status.
const tracingFlushTimeout = 5 * time.Second

// errNotConfirmed ends the span of a job whose run ended before the
// broker confirmed it.
var errNotConfirmed = errors.New("not confirmed")

// jobSpans makes one producer span per job, named "send QUEUE", a child
// of the trace context the caller was given (TRACEPARENT, --traceparent)
// or the root of a new trace, and writes its context in the job's
// traceparent and tracestate headers. A span starts when its job is
// first published and ends when the broker settled it. With tracing off
// no span is made: a given context is written unchanged, and none when
// none was given.
type jobSpans struct {
	tracer trace.Tracer
	parent context.Context // holds the given remote span context, if any
	queue  string
	open   map[int]trace.Span // by job index, until settled
}

// newJobSpans returns the spans of a run publishing to queue with tracer
// (nil: tracing off), under parent (invalid: none given).
func newJobSpans(tracer trace.Tracer, parent trace.SpanContext, queue string) *jobSpans {
	return &jobSpans{
		tracer: tracer,
		parent: trace.ContextWithRemoteSpanContext(context.Background(), parent),
		queue:  queue,
		open:   map[int]trace.Span{},
	}
}

// start starts the span of m and writes its context in m's headers.
func (j *jobSpans) start(m *message) {
	ctx := j.parent
	if j.tracer != nil {
		var span trace.Span
		ctx, span = j.tracer.Start(ctx, "send "+j.queue,
			trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(
				semconv.MessagingSystemRabbitMQ,
				semconv.MessagingOperationTypeSend,
				semconv.MessagingOperationName("publish"),
				semconv.MessagingDestinationName(j.queue),
				semconv.MessagingRabbitMQDestinationRoutingKey(m.queue),
				semconv.MessagingMessageID(m.pub.MessageId),
				semconv.MessagingMessageBodySize(len(m.pub.Body)),
			))
		j.open[m.index] = span
	}
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	if m.pub.Headers == nil {
		m.pub.Headers = amqp.Table{}
	}
	tracing.Inject(ctx, m.pub.Headers)
}

// end ends the span of the job at index, as failed if err is not nil.
func (j *jobSpans) end(index int, err error) {
	span, ok := j.open[index]
	if !ok {
		return
	}
	delete(j.open, index)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// endAll ends the spans of the jobs the run left unsettled, as failed.
func (j *jobSpans) endAll() {
	for index := range j.open {
		j.end(index, errNotConfirmed)
	}
}

// startTracing returns the provider of the run's spans (OTEL_*), and
// sets cfg.tracer when tracing is on. Its error is a *usageError.
func startTracing(cfg *config) (*tracing.Provider, error) {
	spans, err := tracing.New(cfg.Env, "fpmq-caller", zerolog.Nop())
	if err != nil {
		return nil, usagef("configuration: %v", err)
	}
	if spans.Enabled() {
		cfg.tracer = spans.Tracer()
	}
	return spans, nil
}

// flushSpans exports the spans still queued, within tracingFlushTimeout,
// and says on stderr if some were not exported.
func flushSpans(spans *tracing.Provider, stderr io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), tracingFlushTimeout)
	defer cancel()
	err := spans.Shutdown(ctx)
	c := spans.Counts()
	switch lost := c.QueueFull + c.ExportFailed; {
	case err != nil:
		fmt.Fprintf(stderr, "caller: tracing: spans not all exported within %s: %v (the jobs are not affected)\n", tracingFlushTimeout, err)
	case lost > 0:
		fmt.Fprintf(stderr, "caller: tracing: %d spans not exported (the jobs are not affected)\n", lost)
	}
}
