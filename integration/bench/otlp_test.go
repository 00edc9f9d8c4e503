package main

import (
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func TestCountSpans(t *testing.T) {
	span := func(name string) *tracepb.Span {
		return &tracepb.Span{Name: name, TraceId: make([]byte, 16), SpanId: make([]byte, 8), Kind: tracepb.Span_SPAN_KIND_CONSUMER,
			Attributes: []*commonpb.KeyValue{{Key: "k", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 7}}}},
			Status:     &tracepb.Status{Message: "x"}}
	}
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
		{Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name"}}}, SchemaUrl: "s",
			ScopeSpans: []*tracepb.ScopeSpans{
				{Scope: &commonpb.InstrumentationScope{Name: "a"}, Spans: []*tracepb.Span{span("1"), span("2")}},
				{Spans: []*tracepb.Span{span("3")}, SchemaUrl: "u"},
			}},
		{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{span("4"), span("5"), span("6")}}}},
	}}
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := countSpans(b); n != 6 || err != nil {
		t.Errorf("countSpans = %d, %v; want 6, nil", n, err)
	}
	if n, err := countSpans(nil); n != 0 || err != nil {
		t.Errorf("countSpans of an empty request = %d, %v; want 0, nil", n, err)
	}
	if _, err := countSpans(b[:len(b)-3]); err == nil {
		t.Error("countSpans of a cut request: no error")
	}
	if _, err := countSpans([]byte("not protobuf")); err == nil {
		t.Error("countSpans of text: no error")
	}
}
