package tracing

import (
	"context"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// exporter sends spans over OTLP/HTTP with otlptracehttp's client, which
// reads the OTEL_EXPORTER_OTLP_* variables (endpoint, headers, timeout,
// compression, certificates) and retries. It differs from the exporter
// otlptracehttp.New returns only in how it builds OTLP's messages: from
// arrays kept between exports rather than from about forty allocations a
// span, which cost a job's span more than making it (BenchmarkSpan). What
// it sends is the same; TestExporterSendsWhatOTLPTraceHTTPSends checks it.
type exporter struct {
	client otlptrace.Client
	mu     sync.Mutex // held by an export: enc is reused
	enc    encoder
}

// newExporter returns an exporter whose client the environment, then
// opts, configure.
func newExporter(ctx context.Context, opts ...otlptracehttp.Option) (*exporter, error) {
	client := otlptracehttp.NewClient(opts...)
	if err := client.Start(ctx); err != nil {
		return nil, err
	}
	return &exporter{client: client}, nil
}

// ExportSpans sends spans in one request, returning the client's error
// once its retries are over or ctx ended.
func (e *exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	req := e.enc.encode(spans)
	defer e.enc.reset()
	if len(req) == 0 {
		return nil
	}
	if err := e.client.UploadTraces(ctx, req); err != nil {
		return fmt.Errorf("OTLP export: %w", err)
	}
	return nil
}

// Shutdown stops the client; later exports fail.
func (e *exporter) Shutdown(ctx context.Context) error { return e.client.Stop(ctx) }

// arenaChunk is how many messages of a kind an arena allocates at once.
const arenaChunk = 256

// arena hands out zeroed values of T from chunks it keeps: a pointer it
// returned stays valid, and its value unchanged by the arena, until reset.
type arena[T any] struct {
	chunks [][]T
	chunk  int // the chunk next hands out from
	next   int // the index in it
}

// new returns a zeroed T.
func (a *arena[T]) new() *T {
	if a.chunk == len(a.chunks) {
		a.chunks = append(a.chunks, make([]T, arenaChunk))
	}
	p := &a.chunks[a.chunk][a.next]
	if a.next++; a.next == arenaChunk {
		a.chunk, a.next = a.chunk+1, 0
	}
	return p
}

// reset zeroes every value handed out and makes them available again.
func (a *arena[T]) reset() {
	for i := 0; i < len(a.chunks) && i <= a.chunk; i++ {
		clear(a.chunks[i])
	}
	a.chunk, a.next = 0, 0
}

// scopeGroup is the spans of one resource and instrumentation scope.
type scopeGroup struct {
	res   *resource.Resource
	scope instrumentation.Scope
	spans []*tracepb.Span
}

// encoder builds OTLP's ExportTraceServiceRequest content (the OTLP
// specification's trace.proto) from ReadOnlySpans. What encode returns
// is valid until reset. Values of the attribute types spans mostly carry
// (bool, int64, float64, string) come from arenas; the others (slices,
// maps, bytes) are allocated.
type encoder struct {
	spans    arena[tracepb.Span]
	statuses arena[tracepb.Status]
	kvs      arena[commonpb.KeyValue]
	values   arena[commonpb.AnyValue]
	bools    arena[commonpb.AnyValue_BoolValue]
	ints     arena[commonpb.AnyValue_IntValue]
	doubles  arena[commonpb.AnyValue_DoubleValue]
	strs     arena[commonpb.AnyValue_StringValue]
	ids      []byte               // trace and span ids, sliced by the spans
	kvList   []*commonpb.KeyValue // attribute lists, sliced by the spans
	groups   []scopeGroup

	// Resources and scopes rarely change: their messages are kept.
	resources map[*resource.Resource]*resourcepb.Resource
	scopes    map[instrumentation.Scope]*commonpb.InstrumentationScope
}

// encode returns spans as OTLP's resource spans, grouped by resource
// and then by instrumentation scope, in the order they first appear.
func (e *encoder) encode(spans []sdktrace.ReadOnlySpan) []*tracepb.ResourceSpans {
	e.ids = e.ids[:0]
	for _, sd := range spans {
		if sd == nil {
			continue
		}
		g := e.group(sd.Resource(), sd.InstrumentationScope())
		g.spans = append(g.spans, e.span(sd))
	}
	var out []*tracepb.ResourceSpans
	for i := range e.groups {
		g := &e.groups[i]
		ss := &tracepb.ScopeSpans{Scope: e.scope(g.scope), Spans: g.spans, SchemaUrl: g.scope.SchemaURL}
		if i > 0 && g.res == e.groups[i-1].res {
			last := out[len(out)-1]
			last.ScopeSpans = append(last.ScopeSpans, ss)
			continue
		}
		out = append(out, &tracepb.ResourceSpans{Resource: e.resource(g.res), ScopeSpans: []*tracepb.ScopeSpans{ss}, SchemaUrl: g.res.SchemaURL()})
	}
	return out
}

// group returns the group of res and scope, adding it after the other
// groups of res (the groups of a resource stay together).
func (e *encoder) group(res *resource.Resource, scope instrumentation.Scope) *scopeGroup {
	at := len(e.groups)
	for i := range e.groups {
		if e.groups[i].res != res {
			continue
		}
		if e.groups[i].scope == scope {
			return &e.groups[i]
		}
		at = i + 1
	}
	e.groups = append(e.groups, scopeGroup{})
	copy(e.groups[at+1:], e.groups[at:])
	e.groups[at] = scopeGroup{res: res, scope: scope}
	return &e.groups[at]
}

// reset makes every message encode returned available again.
func (e *encoder) reset() {
	for _, a := range []interface{ reset() }{&e.spans, &e.statuses, &e.kvs, &e.values, &e.bools, &e.ints, &e.doubles, &e.strs} {
		a.reset()
	}
	clear(e.kvList)
	e.kvList = e.kvList[:0]
	clear(e.groups)
	e.groups = e.groups[:0]
}

// resource returns res's message, kept while res is among the last few.
func (e *encoder) resource(res *resource.Resource) *resourcepb.Resource {
	if res == nil {
		return nil
	}
	if m, ok := e.resources[res]; ok {
		return m
	}
	if e.resources == nil || len(e.resources) > 8 {
		e.resources = map[*resource.Resource]*resourcepb.Resource{}
	}
	m := &resourcepb.Resource{Attributes: keyValuesOf(res.Attributes())}
	e.resources[res] = m
	return m
}

// scope returns scope's message (nil for the zero scope), kept while
// scope is among the last few.
func (e *encoder) scope(scope instrumentation.Scope) *commonpb.InstrumentationScope {
	if scope == (instrumentation.Scope{}) {
		return nil
	}
	if m, ok := e.scopes[scope]; ok {
		return m
	}
	if e.scopes == nil || len(e.scopes) > 8 {
		e.scopes = map[instrumentation.Scope]*commonpb.InstrumentationScope{}
	}
	m := &commonpb.InstrumentationScope{Name: scope.Name, Version: scope.Version, Attributes: keyValuesOf(scope.Attributes.ToSlice())}
	e.scopes[scope] = m
	return m
}

// span returns sd's message.
func (e *encoder) span(sd sdktrace.ReadOnlySpan) *tracepb.Span {
	sc, parent := sd.SpanContext(), sd.Parent()
	s := e.spans.new()
	s.TraceId = e.traceID(sc.TraceID())
	s.SpanId = e.spanID(sc.SpanID())
	if parent.SpanID().IsValid() {
		s.ParentSpanId = e.spanID(parent.SpanID())
	}
	s.TraceState = sc.TraceState().String()
	s.Flags = spanFlags(sc.TraceFlags(), parent.IsRemote())
	s.Name = sd.Name()
	s.Kind = spanKind(sd.SpanKind())
	s.StartTimeUnixNano, s.EndTimeUnixNano = unixNano(sd.StartTime()), unixNano(sd.EndTime())
	s.Attributes = e.keyValues(sd.Attributes())
	s.DroppedAttributesCount = count32(sd.DroppedAttributes())
	s.Events = e.events(sd.Events())
	s.DroppedEventsCount = count32(sd.DroppedEvents())
	s.Links = e.links(sd.Links())
	s.DroppedLinksCount = count32(sd.DroppedLinks())
	s.Status = e.status(sd.Status())
	return s
}

// status returns a span status's message, present even when unset.
func (e *encoder) status(st sdktrace.Status) *tracepb.Status {
	m := e.statuses.new()
	m.Message = st.Description
	switch st.Code {
	case codes.Ok:
		m.Code = tracepb.Status_STATUS_CODE_OK
	case codes.Error:
		m.Code = tracepb.Status_STATUS_CODE_ERROR
	}
	return m
}

// events returns span events' messages; spans seldom have any.
func (e *encoder) events(events []sdktrace.Event) []*tracepb.Span_Event {
	if len(events) == 0 {
		return nil
	}
	out := make([]*tracepb.Span_Event, len(events))
	for i, ev := range events {
		out[i] = &tracepb.Span_Event{Name: ev.Name, TimeUnixNano: unixNano(ev.Time), Attributes: e.keyValues(ev.Attributes), DroppedAttributesCount: count32(ev.DroppedAttributeCount)}
	}
	return out
}

// links returns span links' messages; spans seldom have any.
func (e *encoder) links(links []sdktrace.Link) []*tracepb.Span_Link {
	if len(links) == 0 {
		return nil
	}
	out := make([]*tracepb.Span_Link, len(links))
	for i, l := range links {
		out[i] = &tracepb.Span_Link{
			TraceId: e.traceID(l.SpanContext.TraceID()), SpanId: e.spanID(l.SpanContext.SpanID()),
			TraceState: l.SpanContext.TraceState().String(), Flags: spanFlags(l.SpanContext.TraceFlags(), l.SpanContext.IsRemote()),
			Attributes: e.keyValues(l.Attributes), DroppedAttributesCount: count32(l.DroppedAttributeCount),
		}
	}
	return out
}

// traceID and spanID return a copy of an id in e.ids.
func (e *encoder) traceID(id trace.TraceID) []byte { return e.bytes(id[:]) }
func (e *encoder) spanID(id trace.SpanID) []byte   { return e.bytes(id[:]) }

func (e *encoder) bytes(b []byte) []byte {
	start := len(e.ids)
	e.ids = append(e.ids, b...)
	return e.ids[start:len(e.ids):len(e.ids)]
}

// keyValues returns attributes' messages, in order.
func (e *encoder) keyValues(attrs []attribute.KeyValue) []*commonpb.KeyValue {
	if len(attrs) == 0 {
		return nil
	}
	start := len(e.kvList)
	for _, a := range attrs {
		kv := e.kvs.new()
		kv.Key, kv.Value = string(a.Key), e.value(a.Value)
		e.kvList = append(e.kvList, kv)
	}
	return e.kvList[start:len(e.kvList):len(e.kvList)]
}

// value returns v's message.
func (e *encoder) value(v attribute.Value) *commonpb.AnyValue {
	m := e.values.new()
	switch v.Type() {
	case attribute.BOOL:
		w := e.bools.new()
		w.BoolValue = v.AsBool()
		m.Value = w
	case attribute.INT64:
		w := e.ints.new()
		w.IntValue = v.AsInt64()
		m.Value = w
	case attribute.FLOAT64:
		w := e.doubles.new()
		w.DoubleValue = v.AsFloat64()
		m.Value = w
	case attribute.STRING:
		w := e.strs.new()
		w.StringValue = v.AsString()
		m.Value = w
	default:
		m.Value = valueOf(v).Value
	}
	return m
}
