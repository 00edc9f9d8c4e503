package tracing

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName names the instrumentation scope of fpmq's spans.
const ScopeName = "github.com/fpmq/fpmq"

// Provider makes fpmq's spans and exports them. Off (Env.Enabled
// false), its Tracer makes no span: a span started under a remote parent
// carries the parent's context unchanged, so that fpmq passes a trace on
// without taking part in it.
type Provider struct {
	sdk    *sdktrace.TracerProvider // nil when off
	batch  *batchProcessor          // nil when off
	tracer trace.Tracer
}

// New returns the Provider s describes, for the service named service
// unless OTEL_SERVICE_NAME names another. The exporter's errors are logged
// on log, at most one line a minute. Call Shutdown when done. It fails
// only on settings that Check refuses.
func New(s Env, service string, log zerolog.Logger) (*Provider, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	if !s.Enabled() {
		return &Provider{tracer: noop.NewTracerProvider().Tracer(ScopeName)}, nil
	}
	sampler, _ := s.sampler() // checked above
	if s.ServiceName != "" {
		service = s.ServiceName
	}
	// The exporter's client reads OTEL_EXPORTER_OTLP_* itself; its own
	// retries stay within OTEL_BSP_EXPORT_TIMEOUT, the context of each
	// export.
	exporter, err := newExporter(context.Background())
	if err != nil {
		return nil, fmt.Errorf("OTLP exporter: %w", err)
	}
	// resource.Default holds OTEL_RESOURCE_ATTRIBUTES.
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(service)))
	if err != nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	batch := newBatchProcessor(exporter, s, log)
	sdk := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sampler),
		sdktrace.WithResource(res),
		sdktrace.WithSpanProcessor(batch),
	)
	return &Provider{sdk: sdk, batch: batch, tracer: sdk.Tracer(ScopeName)}, nil
}

// NewWithProcessor returns a Provider whose spans, all sampled, go to
// processor: for tests, with the SDK's tracetest recorder.
func NewWithProcessor(processor sdktrace.SpanProcessor) *Provider {
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(processor))
	return &Provider{sdk: sdk, tracer: sdk.Tracer(ScopeName)}
}

// Enabled reports whether spans are made and exported.
func (p *Provider) Enabled() bool { return p.sdk != nil }

// Tracer returns the tracer of fpmq's spans.
func (p *Provider) Tracer() trace.Tracer { return p.tracer }

// Counts returns what became of the spans so far; zero when off.
func (p *Provider) Counts() SpanCounts {
	if p.batch == nil {
		return SpanCounts{}
	}
	return p.batch.Counts()
}

// Shutdown exports the spans still queued, within ctx, and stops. Spans
// not exported when ctx ends are lost, and ctx's error returned.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p.sdk == nil {
		return nil
	}
	return p.sdk.Shutdown(ctx)
}
