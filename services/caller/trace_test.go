package main

import (
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/fpmq/fpmq/services/internal/amqptest"
)

const (
	givenTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	givenSpan  = "00f067aa0ba902b7"
	givenTP    = "00-" + givenTrace + "-" + givenSpan + "-01"
)

// headersOf returns the traceparent and tracestate headers of each
// message b received.
func headersOf(b *amqptest.Server) (tps, tss []any) {
	for _, m := range b.Published() {
		tps = append(tps, m.Headers["traceparent"])
		tss = append(tss, m.Headers["tracestate"])
	}
	return tps, tss
}

// With tracing off, the caller passes the context it is given on
// unchanged, --traceparent before TRACEPARENT, and writes none when it is
// given none.
func TestTraceContextWithTracingOff(t *testing.T) {
	for _, tc := range []struct {
		name      string
		env, args []string
		tp, ts    any
	}{
		{"none given", nil, nil, nil, nil},
		{"TRACEPARENT", []string{"TRACEPARENT", givenTP, "TRACESTATE", "vendor=x"}, nil, givenTP, "vendor=x"},
		{"--traceparent wins", []string{"TRACEPARENT", "00-11111111111111111111111111111111-2222222222222222-01"},
			[]string{"--traceparent", givenTP, "--tracestate", "v=1"}, givenTP, "v=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &amqptest.Server{}
			useBroker(t, b)
			for i := 0; i+1 < len(tc.env); i += 2 {
				t.Setenv(tc.env[i], tc.env[i+1])
			}
			code, _, stderr := callCaller(t.Context(), append(tc.args, "1", "2"), "")
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			tps, tss := headersOf(b)
			if len(tps) != 2 || tps[0] != tc.tp || tps[1] != tc.tp || tss[0] != tc.ts {
				t.Errorf("traceparent %v, tracestate %v; want %v, %v on both jobs", tps, tss, tc.tp, tc.ts)
			}
		})
	}
}

func TestMalformedTraceContextIsAUsageError(t *testing.T) {
	b := &amqptest.Server{}
	useBroker(t, b)
	code, stdout, stderr := callCaller(t.Context(), []string{"--traceparent", "00-abc-01", "1"}, "")
	checkUsageError(t, code, stdout, stderr, "invalid --traceparent (argument 2)")
	t.Setenv("TRACEPARENT", strings.ToUpper(givenTP))
	code, stdout, stderr = callCaller(t.Context(), []string{"1"}, "")
	checkUsageError(t, code, stdout, stderr, "invalid TRACEPARENT")
	if n := len(b.Published()); n != 0 {
		t.Errorf("%d jobs published, want none", n)
	}
}

// spanSink is an OTLP/HTTP receiver that keeps the spans it gets.
type spanSink struct {
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (s *spanSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			s.spans = append(s.spans, ss.GetSpans()...)
		}
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
}

// With tracing on, each job gets a producer span, a child of the given
// context, exported before the caller returns; its headers carry that
// span's context.
func TestProducerSpans(t *testing.T) {
	sink := &spanSink{}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	b := &amqptest.Server{}
	useBroker(t, b)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("TRACEPARENT", givenTP)
	code, _, stderr := callCaller(t.Context(), []string{"--type", "mail", "1", "2", "3"}, "")
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.spans) != 3 {
		t.Fatalf("%d spans exported, want 3", len(sink.spans))
	}
	byID := map[string]*tracepb.Span{}
	for _, s := range sink.spans {
		byID[hex.EncodeToString(s.GetSpanId())] = s
		if hex.EncodeToString(s.GetTraceId()) != givenTrace || hex.EncodeToString(s.GetParentSpanId()) != givenSpan ||
			s.GetKind() != tracepb.Span_SPAN_KIND_PRODUCER || s.GetName() != "send commands" {
			t.Errorf("span %v: want a producer span send commands, child of %s", s, givenTP)
		}
	}
	tps, _ := headersOf(b)
	for i, tp := range tps {
		parts := strings.Split(tp.(string), "-")
		s, ok := byID[parts[2]]
		if !ok || parts[1] != givenTrace {
			t.Fatalf("job %d: traceparent %v is not one of the exported spans", i, tp)
		}
		if got := attrString(s, "messaging.message.id"); got != b.Published()[i].MessageId {
			t.Errorf("job %d: span's messaging.message.id %q, want %q", i, got, b.Published()[i].MessageId)
		}
	}
}

func attrString(s *tracepb.Span, key string) string {
	for _, kv := range s.GetAttributes() {
		if kv.GetKey() == key {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}

// An unreachable receiver changes nothing about the jobs: the caller
// says so on stderr and exits 0.
func TestProducerSpansUnreachableReceiver(t *testing.T) {
	b := &amqptest.Server{}
	useBroker(t, b)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("OTEL_BSP_EXPORT_TIMEOUT", "200")
	code, stdout, stderr := callCaller(t.Context(), []string{"1"}, "")
	if code != exitOK || stdout != sentLines(1) || !strings.Contains(stderr, "caller: tracing:") {
		t.Errorf("exit %d, stdout %q, stderr %q; want 0, the job sent, a line about tracing", code, stdout, stderr)
	}
}
