package tracing

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// BenchmarkSpan is what a job's span costs the daemon with tracing on:
// started under a remote parent with a dozen attributes, ended, and
// exported over OTLP/HTTP to a receiver that discards it.
func BenchmarkSpan(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	p, err := New(Env{Endpoint: srv.URL, Protocol: "http/protobuf", Sampler: "always_on",
		QueueSize: 2048, BatchSize: 512, ScheduleDelay: 5000, ExportTimeout: 30000}, "bench", zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	ctx, _ := Extract(context.Background(), map[string]any{"traceparent": valid})
	attrs := []attribute.KeyValue{
		attribute.String("messaging.system", "rabbitmq"), attribute.String("messaging.operation.type", "process"),
		attribute.String("messaging.operation.name", "process"), attribute.String("messaging.destination.name", "commands"),
		attribute.String("messaging.rabbitmq.destination.routing_key", "commands"), attribute.String("messaging.message.id", "0af7651916cd43dd8448eb211c80319c"),
		attribute.Int("messaging.message.body.size", 14), attribute.Int("fpmq.attempt", 1), attribute.Int64("fpmq.queue.wait_ms", 3),
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		// Every batch exported before the next starts: the cost of the
		// export is in the figure, and no span is dropped.
		if n++; n%512 == 0 {
			p.batch.ForceFlush(context.Background())
		}
		_, span := p.Tracer().Start(ctx, "process commands", trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
		span.SetAttributes(attribute.String("fpmq.outcome", "succeeded"), attribute.Int("fpmq.php_fpm.status", 200), attribute.Int64("fpmq.php_fpm.duration_ms", 1))
		span.End()
	}
	b.StopTimer()
	p.batch.ForceFlush(context.Background())
	b.ReportMetric(float64(p.Counts().QueueFull), "dropped")
}
