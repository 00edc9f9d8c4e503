package dispatch

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/fpmq/fpmq/services/internal/outcome"
	"github.com/fpmq/fpmq/services/internal/tracing"
)

const (
	producerTrace = "0af7651916cd43dd8448eb211c80319c"
	producerSpan  = "b7ad6b7169203331"
	producerTP    = "00-" + producerTrace + "-" + producerSpan + "-01"
)

// tracedRun is what one traced Handle did.
type tracedRun struct {
	res    outcome.Result
	span   sdktrace.ReadOnlySpan // nil if none was recorded
	script http.Header           // the request headers the script saw (HTTP_* params)
	copies []sent
	log    string
}

// handleTraced runs one job with headers on a worker answering status,
// with tracing on (a recorder of the spans) or off.
func handleTraced(t *testing.T, headers amqp.Table, status int, on bool) tracedRun {
	t.Helper()
	var mu sync.Mutex
	var script http.Header
	addr, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		script = r.Header.Clone()
		mu.Unlock()
		w.WriteHeader(status)
	})
	var log bytes.Buffer
	d := newDispatcher(t, addr, &log)
	rec := tracetest.NewSpanRecorder()
	if on {
		d.tracer = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test")
		d.traced = true
	}
	m, _ := delivery(`{"number":42}`, headers)
	m.RoutingKey = "jobs"
	pub := &publisher{}
	run := tracedRun{res: d.Handle(context.Background(), m, pub), copies: pub.sent, log: log.String()}
	if ended := rec.Ended(); len(ended) == 1 {
		run.span = ended[0]
	} else if len(ended) > 1 {
		t.Fatalf("%d spans for one delivery", len(ended))
	}
	mu.Lock()
	run.script = script
	mu.Unlock()
	return run
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// The span of a delivery is a consumer span, child of the producer's
// context, with the messaging attributes and fpmq's; the script sees its
// context; the retry copy keeps the producer's; the outcome line carries
// its ids.
func TestSpanOfAFailedAttempt(t *testing.T) {
	run := handleTraced(t, amqp.Table{"traceparent": producerTP, "tracestate": "vendor=x"}, 503, true)
	s := run.span
	if s == nil {
		t.Fatal("no span recorded")
	}
	if s.SpanKind() != trace.SpanKindConsumer || s.Name() != "process jobs" {
		t.Errorf("span %q of kind %v, want process jobs, consumer", s.Name(), s.SpanKind())
	}
	if s.Parent().TraceID().String() != producerTrace || s.Parent().SpanID().String() != producerSpan || !s.Parent().IsRemote() {
		t.Errorf("parent %v, want the producer's remote span", s.Parent())
	}
	if s.SpanContext().TraceState().Get("vendor") != "x" {
		t.Errorf("trace state %q, want the producer's", s.SpanContext().TraceState())
	}
	a := attrs(s)
	want := map[attribute.Key]any{
		"messaging.system": "rabbitmq", "messaging.operation.type": "process", "messaging.operation.name": "process",
		"messaging.destination.name": "jobs", "messaging.rabbitmq.destination.routing_key": "jobs",
		"messaging.message.id": "m-1", "messaging.message.body.size": int64(13),
		AttrAttempt: int64(1), AttrOutcome: "retried", AttrStatus: int64(503), "error.type": "attempt-failed",
	}
	for k, v := range want {
		if got := a[k].AsInterface(); got != v {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	if w := a[AttrQueueWait].AsInt64(); w <= 0 {
		t.Errorf("%s = %d, want the ms since the message's timestamp", AttrQueueWait, w)
	}
	if s.Status().Code != codes.Error {
		t.Errorf("status %v, want an error for a failed attempt", s.Status())
	}
	sc := s.SpanContext()
	if got, want := run.script.Get("Traceparent"), "00-"+sc.TraceID().String()+"-"+sc.SpanID().String()+"-01"; got != want {
		t.Errorf("the script saw HTTP_TRACEPARENT %q, want the span's %q", got, want)
	}
	if got := run.script.Get("Tracestate"); got != "vendor=x" {
		t.Errorf("the script saw HTTP_TRACESTATE %q, want vendor=x", got)
	}
	if len(run.copies) != 1 || run.copies[0].msg.Headers["traceparent"] != producerTP {
		t.Errorf("retry copy %+v, want it to keep the producer's traceparent", run.copies)
	}
	if !strings.Contains(run.log, `"trace_id":"`+sc.TraceID().String()+`","span_id":"`+sc.SpanID().String()+`"`) {
		t.Errorf("the outcome line has not the span's ids:\n%s", run.log)
	}
}

// A job without a valid traceparent starts a trace; its copies carry that
// trace so that later attempts join it; a malformed one is logged.
func TestSpanWithoutAProducer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers amqp.Table
		logged  bool
	}{
		{"none", nil, false},
		{"malformed", amqp.Table{"traceparent": "00-" + strings.ToUpper(producerTrace) + "-" + producerSpan + "-01", "tracestate": "a=b"}, true},
		{"not a string", amqp.Table{"traceparent": int64(7)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := handleTraced(t, tc.headers, 500, true)
			s := run.span
			if s == nil || s.Parent().IsValid() {
				t.Fatalf("span %v, want a root span", s)
			}
			if run.res.Outcome != outcome.Retried {
				t.Errorf("outcome %v, want retried: a bad traceparent never fails a job", run.res.Outcome)
			}
			tp, _ := tracing.Format(s.SpanContext())
			if len(run.copies) != 1 || run.copies[0].msg.Headers["traceparent"] != tp || run.copies[0].msg.Headers["tracestate"] != nil {
				t.Errorf("retry copy headers %v, want traceparent %s and no tracestate", run.copies[0].msg.Headers, tp)
			}
			if got := strings.Contains(run.log, "malformed traceparent"); got != tc.logged {
				t.Errorf("malformed traceparent logged: %v, want %v; log:\n%s", got, tc.logged, run.log)
			}
		})
	}
}

// A replayed job's span links to the trace it had before.
func TestSpanOfAReplayedJob(t *testing.T) {
	run := handleTraced(t, amqp.Table{outcome.HeaderReplayOf: producerTP}, 200, true)
	links := run.span.Links()
	if len(links) != 1 || links[0].SpanContext.TraceID().String() != producerTrace || links[0].SpanContext.SpanID().String() != producerSpan {
		t.Fatalf("links %+v, want one to the producer's span", links)
	}
	if links[0].Attributes[0] != AttrLinkType.String("replay-of") {
		t.Errorf("link attributes %v, want fpmq.link.type=replay-of", links[0].Attributes)
	}
	if run.span.Parent().IsValid() {
		t.Errorf("parent %v, want none: a replay runs in a trace of its own", run.span.Parent())
	}
}

// A dead-lettered job's span says why, and its dead letter keeps the
// trace.
func TestSpanOfADeadLetter(t *testing.T) {
	run := handleTraced(t, amqp.Table{"traceparent": producerTP}, 422, true)
	a := attrs(run.span)
	if a[AttrOutcome].AsString() != "dead-lettered" || a[AttrReason].AsString() != outcome.ReasonRejected || run.span.Status().Code != codes.Error {
		t.Errorf("attributes %v, status %v", a, run.span.Status())
	}
	if len(run.copies) != 1 || run.copies[0].queue != "jobs.dead" || run.copies[0].msg.Headers["traceparent"] != producerTP {
		t.Errorf("dead letter %+v, want the producer's traceparent kept", run.copies)
	}
}

// With tracing off, no span is made and the outcome line has no ids, but
// the producer's context reaches the script unchanged.
func TestTracingOff(t *testing.T) {
	run := handleTraced(t, amqp.Table{"traceparent": producerTP, "tracestate": "vendor=x"}, 200, false)
	if got := run.script.Get("Traceparent"); got != producerTP {
		t.Errorf("the script saw HTTP_TRACEPARENT %q, want the producer's %q unchanged", got, producerTP)
	}
	if strings.Contains(run.log, "trace_id") {
		t.Errorf("outcome line with tracing off has trace ids:\n%s", run.log)
	}
	if none := handleTraced(t, nil, 200, false); none.script.Get("Traceparent") != "" {
		t.Errorf("the script saw HTTP_TRACEPARENT %q with neither tracing nor a producer's context", none.script.Get("Traceparent"))
	}
}

// The malformed-traceparent warning is rate-limited.
func TestMalformedTraceparentLogIsRateLimited(t *testing.T) {
	addr, _ := serve(t, status(200))
	var log bytes.Buffer
	d := newDispatcher(t, addr, &log)
	for range 3 * malformedLogBurst {
		m, _ := delivery(`{"number":1}`, amqp.Table{"traceparent": "garbage"})
		if res := d.Handle(context.Background(), m, &publisher{}); res.Outcome != outcome.Succeeded {
			t.Fatalf("outcome %v, want succeeded", res.Outcome)
		}
	}
	if n := strings.Count(log.String(), "malformed traceparent"); n != malformedLogBurst {
		t.Errorf("%d warnings for %d jobs within a minute, want %d", n, 3*malformedLogBurst, malformedLogBurst)
	}
}
