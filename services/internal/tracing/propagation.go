package tracing

import (
	"context"
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// The W3C Trace Context headers, as AMQP header names: the same names in
// lower case as in HTTP.
const (
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
)

// traceContext reads and writes W3C Trace Context; it holds no state.
var traceContext propagation.TraceContext

// Parent says what a message's headers hold of a trace context.
type Parent int

// What a message's headers may hold.
const (
	// NoParent: no traceparent header.
	NoParent Parent = iota
	// ValidParent: a traceparent that W3C Trace Context accepts.
	ValidParent
	// MalformedParent: a traceparent header that is not one (a wrong
	// length, upper-case hex, all-zero ids, not a string...).
	MalformedParent
)

// Headers adapts a message's AMQP headers to OpenTelemetry's propagators
// (propagation.TextMapCarrier). A header is read only if it holds a string
// or bytes; Set needs a non-nil table.
type Headers amqp.Table

// Get returns the value of header key as a string; "" if it has none or
// not a string.
func (h Headers) Get(key string) string {
	switch v := h[key].(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return ""
}

// Set sets header key to value.
func (h Headers) Set(key, value string) { h[key] = value }

// Keys returns the names of the headers.
func (h Headers) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// Extract returns ctx with the remote span context that h's traceparent
// and tracestate headers hold, if they hold a valid one, and what h held.
func Extract(ctx context.Context, h amqp.Table) (context.Context, Parent) {
	if _, ok := h[HeaderTraceparent]; !ok {
		return ctx, NoParent
	}
	out := traceContext.Extract(ctx, Headers(h))
	if !trace.SpanContextFromContext(out).IsValid() {
		return ctx, MalformedParent
	}
	return out, ValidParent
}

// Inject writes the span context of ctx in h as traceparent and, if it
// has one, tracestate, replacing what h held; with no valid span context
// it deletes both. h must not be nil.
func Inject(ctx context.Context, h amqp.Table) {
	delete(h, HeaderTraceparent)
	delete(h, HeaderTracestate)
	traceContext.Inject(ctx, Headers(h))
}

// ErrMalformed says that a traceparent is not W3C Trace Context.
var ErrMalformed = errors.New("not a W3C traceparent (version-traceid-parentid-flags, such as 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01)")

// Parse returns the remote span context that traceparent and tracestate
// describe, such as the TRACEPARENT and TRACESTATE environment variables
// give. An error wraps ErrMalformed.
func Parse(traceparent, tracestate string) (trace.SpanContext, error) {
	carrier := propagation.MapCarrier{HeaderTraceparent: traceparent}
	if tracestate != "" {
		carrier[HeaderTracestate] = tracestate
	}
	sc := trace.SpanContextFromContext(traceContext.Extract(context.Background(), carrier))
	if !sc.IsValid() {
		return sc, fmt.Errorf("%q: %w", traceparent, ErrMalformed)
	}
	return sc, nil
}

// Format returns sc as W3C Trace Context header values: traceparent, and
// tracestate ("" when it has none). Both are "" for an invalid sc.
func Format(sc trace.SpanContext) (traceparent, tracestate string) {
	var c contextHeaders
	traceContext.Inject(trace.ContextWithSpanContext(context.Background(), sc), &c)
	return c.traceparent, c.tracestate
}

// contextHeaders holds the two W3C Trace Context headers: a
// propagation.TextMapCarrier cheaper than a map, for the span context
// every job hands its script.
type contextHeaders struct{ traceparent, tracestate string }

func (c *contextHeaders) Get(key string) string {
	switch key {
	case HeaderTraceparent:
		return c.traceparent
	case HeaderTracestate:
		return c.tracestate
	}
	return ""
}

func (c *contextHeaders) Set(key, value string) {
	switch key {
	case HeaderTraceparent:
		c.traceparent = value
	case HeaderTracestate:
		c.tracestate = value
	}
}

func (c *contextHeaders) Keys() []string { return []string{HeaderTraceparent, HeaderTracestate} }
