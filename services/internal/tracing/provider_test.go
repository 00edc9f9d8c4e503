package tracing

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// receiver is an OTLP/HTTP receiver that counts the spans it took, or
// answers as respond says.
type receiver struct {
	spans   atomic.Int64
	respond func(w http.ResponseWriter, r *http.Request) bool // true: answered, take nothing
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rc.respond != nil && rc.respond(w, r) {
		return
	}
	body, _ := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			rc.spans.Add(int64(len(ss.GetSpans())))
		}
	}
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

// provider returns a Provider exporting to url with the OTEL_BSP_* values
// given, shut down when the test ends.
func provider(t *testing.T, url string, queue, batch, timeoutMS int) *Provider {
	t.Helper()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
	p, err := New(Env{Endpoint: url, Protocol: "http/protobuf", Sampler: "parentbased_always_on",
		QueueSize: queue, BatchSize: batch, ScheduleDelay: 50, ExportTimeout: timeoutMS}, "test", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	return p
}

// endSpans starts and ends n spans and returns how long that took.
func endSpans(p *Provider, n int) time.Duration {
	start := time.Now()
	for range n {
		_, span := p.Tracer().Start(context.Background(), "job")
		span.End()
	}
	return time.Since(start)
}

func TestExport(t *testing.T) {
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	p := provider(t, srv.URL, 64, 8, 5000)
	endSpans(p, 20)
	if err := p.batch.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := rc.spans.Load(); got != 20 {
		t.Errorf("receiver took %d spans, want 20", got)
	}
	if c := p.Counts(); c != (SpanCounts{Exported: 20}) {
		t.Errorf("counts %+v, want 20 exported", c)
	}
}

// A receiver that does not answer never holds up a span's end: the queue
// fills, what does not fit is dropped and counted, and so is what the
// stuck export held.
func TestStuckReceiverDropsAndCounts(t *testing.T) {
	release := make(chan struct{})
	rc := &receiver{respond: func(http.ResponseWriter, *http.Request) bool {
		<-release
		return true
	}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	defer close(release)
	p := provider(t, srv.URL, 16, 4, 300)
	if took := endSpans(p, 2000); took > time.Second {
		t.Errorf("ending 2000 spans took %s with the receiver stuck", took)
	}
	c := p.Counts()
	if c.QueueFull < 2000-16-4 {
		t.Errorf("counts %+v: want all but the queue's and a batch dropped as queue_full", c)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.Counts().ExportFailed == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if c := p.Counts(); c.ExportFailed == 0 || c.Exported != 0 {
		t.Errorf("counts %+v: want the stuck export's spans counted as failed past OTEL_BSP_EXPORT_TIMEOUT", c)
	}
}

// A receiver that refuses every export: the spans are counted as failed.
func TestRefusingReceiver(t *testing.T) {
	rc := &receiver{respond: func(w http.ResponseWriter, _ *http.Request) bool {
		http.Error(w, "no", http.StatusBadRequest) // not retryable
		return true
	}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	p := provider(t, srv.URL, 64, 8, 2000)
	endSpans(p, 10)
	p.batch.ForceFlush(context.Background())
	if c := p.Counts(); c.ExportFailed != 10 || c.Exported != 0 {
		t.Errorf("counts %+v, want 10 failed", c)
	}
}

// Off, the tracer makes no spans, and passes a remote parent on unchanged.
func TestOff(t *testing.T) {
	p, err := New(Env{Protocol: "http/protobuf", Sampler: "parentbased_always_on", QueueSize: 1, BatchSize: 1, ScheduleDelay: 1, ExportTimeout: 1}, "test", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if p.Enabled() {
		t.Fatal("enabled without an endpoint")
	}
	ctx, _ := Extract(context.Background(), map[string]any{"traceparent": valid})
	_, span := p.Tracer().Start(ctx, "job")
	if span.IsRecording() {
		t.Error("a span is recorded with tracing off")
	}
	if tp, _ := Format(span.SpanContext()); tp != valid {
		t.Errorf("the span's context %q, want the parent's %q", tp, valid)
	}
	if err := p.Shutdown(context.Background()); err != nil || p.Counts() != (SpanCounts{}) {
		t.Errorf("Shutdown: %v, counts %+v", err, p.Counts())
	}
}
