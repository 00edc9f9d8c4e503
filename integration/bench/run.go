package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// The report's sections, one per measurement.
const (
	secDirect    = "(a) direct FastCGI: bench -> php-fpm, CONCURRENCY requests at a time, a connection per request, no broker"
	secBare      = "(b) bare consumer: amqp091-go, prefetch CONCURRENCY, one ack per message"
	secBareMulti = "diagnostic (no target): bare consumer, prefetch 2 x CONCURRENCY, one ack (multiple) per CONCURRENCY messages"
	secPipeline  = "pipeline: the daemon as compose deploys it, draining a pre-filled queue"
	secTraced    = "pipeline with tracing on: every job sampled (OTEL_TRACES_SAMPLER=always_on), its span exported over OTLP/HTTP to a receiver on the host"
	secUnbatched = "diagnostic (no target): pipeline with LOG_FLUSH_INTERVAL=0, each log line written at once"
	secQuiet     = "diagnostic (no target): pipeline with LOG_LEVEL=warn, no log line per job"
	secNoKeep    = "diagnostic (no target): pipeline with FASTCGI_KEEPALIVE=false, a connection per job"
	secPrefetch  = "diagnostic (no target): pipeline with PREFETCH=2 x CONCURRENCY"
	secDerived   = "the machine's limit, from the baselines of the same repetition"
	secLatency   = "latency at half the sustained rate (jobs published and run at once): send -> worker start"
	secArticle   = "article test: sleeping jobs on the deployment's CONCURRENCY, daemon running"
	secPublish   = "publishing half as many jobs from the host"
	secSweep     = "throughput against CONCURRENCY: a pool of 201 children, the deployment's daemon otherwise"
	secBig       = "long jobs on a big pool: CONCURRENCY=50, a pool of 201 children"
	secMemory    = "memory: CONCURRENCY=200, 200 jobs of 2 s at once, a pool of 201 children"
)

// The big pool's size, and what runs on it.
const (
	bigChildren  = 201 // 200 concurrent jobs and a child to spare
	bigJobs      = 1000
	bigNap       = 100 * time.Millisecond
	bigC         = 50
	memoryC      = 200
	memoryNap    = 2 * time.Second
	cpuPerJobFmt = "%s CPU per job"
)

// sweep are the concurrencies of the throughput sweep.
var sweep = []int{1, 2, 5, 10, 20, 50}

// sweepName names the rate at concurrency c.
func sweepName(c int) string { return fmt.Sprintf("jobs/s at CONCURRENCY=%d", c) }

// bench runs the measurements on the system and records them in a report.
type bench struct {
	opts     options
	sys      *system
	rep      *report
	progress func(format string, args ...any)
	// spans receives the tracing phase's spans; nil outside runAll.
	spans *spanReceiver
}

// runAll runs every measurement on the deployment: the throughput ones side
// by side in each repetition, then, on one running daemon, the sustained
// rate (jobs published and run at once), latency at half its median, then
// the article test.
func (b *bench) runAll(ctx context.Context) error {
	// The first requests of a fresh pool compile the script and fault its
	// children's memory in; no measurement should pay for that.
	b.progress("warming up the pool")
	if err := b.drive(ctx, 1000); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	spans, err := startSpanReceiver(ctx, b.sys)
	if err != nil {
		return err
	}
	defer spans.close()
	b.spans = spans
	for i := range b.opts.reps {
		if err := b.throughput(ctx, i); err != nil {
			return err
		}
	}
	return b.onRunningDaemon(ctx)
}

// throughput runs repetition i of the throughput measurements: the two
// baselines, the pipeline and its diagnostic variants, then the publishers.
func (b *bench) throughput(ctx context.Context, i int) error {
	c := b.sys.concurrency
	b.progress("repetition %d/%d: direct FastCGI, %d requests", i+1, b.opts.reps, b.opts.jobs)
	if err := b.direct(ctx); err != nil {
		return fmt.Errorf("direct FastCGI: %w", err)
	}
	b.progress("repetition %d/%d: bare consumer, %d messages", i+1, b.opts.reps, b.opts.jobs)
	if err := b.bareConsumer(ctx, secBare, c, 1); err != nil {
		return fmt.Errorf("bare consumer: %w", err)
	}
	if err := b.bareConsumer(ctx, secBareMulti, 2*c, c); err != nil {
		return fmt.Errorf("bare consumer, multiple acks: %w", err)
	}
	for _, v := range []struct {
		section string
		env     map[string]string
	}{
		{secPipeline, nil},
		{secTraced, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": b.spans.endpoint, "OTEL_TRACES_SAMPLER": "always_on"}},
		{secUnbatched, map[string]string{"LOG_FLUSH_INTERVAL": "0"}},
		{secQuiet, map[string]string{"LOG_LEVEL": "warn"}},
		{secNoKeep, map[string]string{"FASTCGI_KEEPALIVE": "false"}},
		{secPrefetch, map[string]string{"PREFETCH": strconv.Itoa(2 * c)}},
	} {
		b.progress("repetition %d/%d: %s, %d jobs", i+1, b.opts.reps, v.section, b.opts.jobs)
		received := b.spans.spans.Load()
		if err := b.pipeline(ctx, v.section, b.opts.jobs, v.env); err != nil {
			return fmt.Errorf("%s: %w", v.section, err)
		}
		if v.section == secTraced {
			// The daemon exported what it had queued as it stopped: the
			// rest were dropped, never waited for.
			b.rep.add(secTraced, "spans received per job", "", float64(b.spans.spans.Load()-received)/float64(b.opts.jobs))
		}
	}
	b.progress("repetition %d/%d: caller and plain publisher, %d jobs each", i+1, b.opts.reps, b.opts.callerJobs)
	if err := b.publishers(ctx); err != nil {
		return fmt.Errorf("publishers: %w", err)
	}
	return nil
}

// onRunningDaemon starts a daemon as compose deploys it and runs, every
// repetition of each before the next, the sustained rate, latency at half
// its median, and the article test; then it removes the daemon.
func (b *bench) onRunningDaemon(ctx context.Context) error {
	b.progress("starting a daemon for the latency and article tests")
	d, err := b.sys.startDaemon(ctx, nil)
	if err != nil {
		return err
	}
	for i := range b.opts.reps {
		b.progress("repetition %d/%d: sustained rate, %d jobs published while the daemon runs them", i+1, b.opts.reps, b.opts.latencyJobs)
		if err := b.sustained(ctx, d.GetContainerID()); err != nil {
			return fmt.Errorf("sustained rate: %w", err)
		}
	}
	s, ok := summarize(b.rep.values(secLatency, sustainedName))
	if !ok {
		return errors.New("no sustained rate to pace the latency test")
	}
	rate := s.median / 2
	for i := range b.opts.reps {
		b.progress("repetition %d/%d: latency, %d jobs per path at %.0f/s", i+1, b.opts.reps, b.opts.latencyJobs, rate)
		if err := b.latency(ctx, rate, d.GetContainerID()); err != nil {
			return fmt.Errorf("latency: %w", err)
		}
	}
	for i := range b.opts.reps {
		b.progress("repetition %d/%d: article test, %d jobs of %s", i+1, b.opts.reps, b.opts.articleJobs, b.opts.articleSleep)
		if err := b.article(ctx, secArticle, b.opts.articleJobs, b.opts.articleSleep, b.sys.concurrency); err != nil {
			return fmt.Errorf("article test: %w", err)
		}
	}
	return b.sys.Remove(ctx, d)
}

// runBig runs the measurements that need a pool of bigChildren: the
// throughput sweep, long jobs at CONCURRENCY=50 and the daemon's memory
// with 200 jobs at once.
func (b *bench) runBig(ctx context.Context) error {
	b.progress("warming up the big pool")
	if err := b.drive(ctx, 4*bigChildren); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	n := max(b.opts.jobs/2, 500)
	for i := range b.opts.reps {
		for _, c := range sweep {
			b.progress("repetition %d/%d: throughput at CONCURRENCY=%d, %d jobs", i+1, b.opts.reps, c, n)
			if err := b.pipeline(ctx, secSweep, n, map[string]string{"CONCURRENCY": strconv.Itoa(c)}); err != nil {
				return fmt.Errorf("sweep at %d: %w", c, err)
			}
		}
	}
	for _, t := range []struct {
		section string
		c, n    int
		nap     time.Duration
	}{
		{secBig, bigC, bigJobs, bigNap},
		{secMemory, memoryC, memoryC, memoryNap},
	} {
		d, err := b.sys.startDaemon(ctx, map[string]string{"CONCURRENCY": strconv.Itoa(t.c)})
		if err != nil {
			return err
		}
		for i := range b.opts.reps {
			b.progress("repetition %d/%d: %d jobs of %s at CONCURRENCY=%d", i+1, b.opts.reps, t.n, t.nap, t.c)
			if err := b.article(ctx, t.section, t.n, t.nap, t.c); err != nil {
				return fmt.Errorf("%s: %w", t.section, err)
			}
			if t.section == secMemory {
				b.addPeakRSS(ctx, secMemory, d)
			}
		}
		if err := b.sys.Remove(ctx, d); err != nil {
			return err
		}
	}
	return nil
}
