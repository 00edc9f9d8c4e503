package tracing

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// SpanCounts are what became of the spans that ended, since the start.
type SpanCounts struct {
	Exported int64 // taken by the receiver
	// QueueFull counts spans dropped because OTEL_BSP_MAX_QUEUE_SIZE spans
	// already waited: the exporter was slower than the jobs, or stuck.
	QueueFull int64
	// ExportFailed counts spans of exports that failed or ran past
	// OTEL_BSP_EXPORT_TIMEOUT: the receiver was unreachable or refused them.
	ExportFailed int64
}

// batchProcessor is a span processor that exports ended spans in batches
// from a bounded queue, as the SDK's BatchSpanProcessor does, and counts
// what it drops, which the SDK's does not tell. OnEnd never blocks: a
// span that finds the queue full is dropped, so that a slow or
// unreachable receiver never slows a job. One goroutine, started by
// newBatchProcessor and ended by Shutdown, exports.
type batchProcessor struct {
	exporter sdktrace.SpanExporter
	queue    chan sdktrace.ReadOnlySpan
	batch    int           // spans per export at most
	delay    time.Duration // between exports at most
	timeout  time.Duration // one export at most
	log      zerolog.Logger

	flushes  chan chan struct{} // ForceFlush's requests, each closed once done
	stop     chan struct{}      // closed by Shutdown
	stopOnce sync.Once
	done     chan struct{} // closed once the goroutine returned

	exported, queueFull, exportFailed atomic.Int64
}

// newBatchProcessor starts a processor exporting through exporter as s
// says (OTEL_BSP_*). Export failures are logged on log, at most one line a
// minute.
func newBatchProcessor(exporter sdktrace.SpanExporter, s Env, log zerolog.Logger) *batchProcessor {
	p := &batchProcessor{
		exporter: exporter,
		queue:    make(chan sdktrace.ReadOnlySpan, s.QueueSize),
		batch:    min(s.BatchSize, s.QueueSize),
		delay:    millis(s.ScheduleDelay),
		timeout:  millis(s.ExportTimeout),
		log:      log.Sample(&zerolog.BurstSampler{Burst: 1, Period: time.Minute}),
		flushes:  make(chan chan struct{}),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go p.loop()
	return p
}

// OnStart does nothing: spans are exported once they end.
func (p *batchProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd queues a sampled span for export, or drops and counts it if the
// queue is full or the processor shut down.
func (p *batchProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return
	}
	select {
	case <-p.stop:
		p.queueFull.Add(1)
		return
	default:
	}
	select {
	case p.queue <- s:
	default:
		p.queueFull.Add(1)
	}
}

// Counts returns what became of the spans so far.
func (p *batchProcessor) Counts() SpanCounts {
	return SpanCounts{Exported: p.exported.Load(), QueueFull: p.queueFull.Load(), ExportFailed: p.exportFailed.Load()}
}

// ForceFlush exports every queued span, returning once done or when ctx
// ends, with ctx's error.
func (p *batchProcessor) ForceFlush(ctx context.Context) error {
	flushed := make(chan struct{})
	select {
	case p.flushes <- flushed:
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-flushed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown exports what is queued, within ctx, then shuts the exporter
// down. Spans that end later are dropped and counted.
func (p *batchProcessor) Shutdown(ctx context.Context) error {
	p.stopOnce.Do(func() { close(p.stop) })
	select {
	case <-p.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return p.exporter.Shutdown(ctx)
}

// loop gathers spans into batches and exports each when it is full, when
// delay has passed since the last export, on ForceFlush, and at Shutdown.
func (p *batchProcessor) loop() {
	defer close(p.done)
	batch := make([]sdktrace.ReadOnlySpan, 0, p.batch)
	tick := time.NewTicker(p.delay)
	defer tick.Stop()
	for {
		select {
		case s := <-p.queue:
			if batch = append(batch, s); len(batch) == p.batch {
				batch = p.export(batch)
			}
		case <-tick.C:
			batch = p.export(batch)
		case flushed := <-p.flushes:
			batch = p.export(p.drain(batch))
			close(flushed)
		case <-p.stop:
			p.export(p.drain(batch))
			return
		}
	}
}

// drain moves every queued span into batch, exporting each full batch on
// the way, and returns what is left.
func (p *batchProcessor) drain(batch []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	for {
		select {
		case s := <-p.queue:
			if batch = append(batch, s); len(batch) == p.batch {
				batch = p.export(batch)
			}
		default:
			return batch
		}
	}
}

// export sends batch within the export timeout, counts the outcome and
// returns batch emptied for reuse.
func (p *batchProcessor) export(batch []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	if len(batch) == 0 {
		return batch
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	if err := p.exporter.ExportSpans(ctx, batch); err != nil {
		p.exportFailed.Add(int64(len(batch)))
		p.log.Warn().Err(err).Int("spans", len(batch)).
			Msg("tracing: spans not exported, dropped (fpmq_trace_spans_dropped_total); jobs are not affected (at most one such line a minute)")
	} else {
		p.exported.Add(int64(len(batch)))
	}
	clear(batch)
	return batch[:0]
}
