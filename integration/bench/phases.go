package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/testcontainers/testcontainers-go"

	"github.com/fpmq/fpmq/integration/stack"
)

// The report's sections, one per measurement.
const (
	secDirect    = "(a) direct FastCGI: bench -> php-fpm, CONCURRENCY requests at a time, a connection per request, no broker"
	secBare      = "(b) bare consumer: amqp091-go, prefetch CONCURRENCY, one ack per message"
	secBareMulti = "diagnostic (no target): bare consumer, prefetch 2 x CONCURRENCY, one ack (multiple) per CONCURRENCY messages"
	secPipeline  = "pipeline: the daemon as compose deploys it, draining a pre-filled queue"
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
}

// runAll runs every measurement on the deployment: the throughput ones side
// by side in each repetition, then the sustained rate (jobs published and
// run at once), latency at half its median, then the article test.
func (b *bench) runAll(ctx context.Context) error {
	// The first requests of a fresh pool compile the script and fault its
	// children's memory in; no measurement should pay for that.
	b.progress("warming up the pool")
	if err := b.drive(ctx, 1000); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	c := b.sys.concurrency
	for i := range b.opts.reps {
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
			{secUnbatched, map[string]string{"LOG_FLUSH_INTERVAL": "0"}},
			{secQuiet, map[string]string{"LOG_LEVEL": "warn"}},
			{secNoKeep, map[string]string{"FASTCGI_KEEPALIVE": "false"}},
			{secPrefetch, map[string]string{"PREFETCH": strconv.Itoa(2 * c)}},
		} {
			b.progress("repetition %d/%d: %s, %d jobs", i+1, b.opts.reps, v.section, b.opts.jobs)
			if err := b.pipeline(ctx, v.section, b.opts.jobs, v.env); err != nil {
				return fmt.Errorf("%s: %w", v.section, err)
			}
		}
		b.progress("repetition %d/%d: caller and plain publisher, %d jobs each", i+1, b.opts.reps, b.opts.callerJobs)
		if err := b.publishers(ctx); err != nil {
			return fmt.Errorf("publishers: %w", err)
		}
	}

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
		if err := b.article(ctx, secArticle, b.opts.articleJobs, b.opts.articleSleep, c); err != nil {
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

// usage is the CPU time used so far by the processes a phase involves, and
// by the whole machine.
type usage struct {
	at         time.Time
	self       time.Duration            // this process
	byID       map[string]time.Duration // containers, by ID
	engine     map[int]time.Duration    // engine processes, by PID
	engineErr  error                    // why engine is unknown
	machine    time.Duration            // every CPU of the machine, busy
	machineErr error                    // why machine is unknown
}

// snapshot reads the CPU time of this process, the engine, the machine and
// the given containers.
func (b *bench) snapshot(ctx context.Context, ids ...string) (usage, error) {
	u := usage{at: time.Now(), self: selfCPU(), byID: map[string]time.Duration{}}
	u.engine, u.engineErr = engineCPU(b.sys.containerIDs())
	u.machine, u.machineErr = machineCPU()
	for _, id := range ids {
		t, err := b.sys.containerCPU(ctx, id)
		if err != nil {
			return u, fmt.Errorf("cpu time of container %s: %w", id[:12], err)
		}
		u.byID[id] = t
	}
	return u, nil
}

// perItem returns the CPU time per item between two snapshots, in µs.
func perItem(before, after time.Duration, n int) float64 {
	return float64(after-before) / float64(time.Microsecond) / float64(n)
}

// addEngine records the engine's CPU time per item, or why it is unknown.
func (b *bench) addEngine(section, name string, before, after usage, n int) {
	const unit = "µs (info)"
	if err := errors.Join(before.engineErr, after.engineErr); err != nil {
		b.rep.missing(section, name, unit, err.Error())
		return
	}
	b.rep.add(section, name, unit, perItem(0, engineDelta(before.engine, after.engine), n))
}

// addBusy records how many cores the phase's processes kept busy on
// average (the bench itself if self, the engine if known, and the given
// containers), and how many the whole machine did. Near the core count, the
// phase was CPU-bound; a whole machine well above the phase's processes means
// that someone else's work competed with it. pass, if not empty, ends the
// figures' names.
func (b *bench) addBusy(section, pass string, before, after usage, self bool, ids ...string) {
	busy := time.Duration(0)
	if self {
		busy += after.self - before.self
	}
	if before.engineErr == nil && after.engineErr == nil {
		busy += engineDelta(before.engine, after.engine)
	}
	for _, id := range ids {
		busy += after.byID[id] - before.byID[id]
	}
	unit := fmt.Sprintf("of %d cores", runtime.NumCPU())
	elapsed := after.at.Sub(before.at).Seconds()
	b.rep.add(section, "cores busy: the measured processes"+pass, unit, busy.Seconds()/elapsed)
	name := "cores busy: whole machine" + pass
	if err := errors.Join(before.machineErr, after.machineErr); err != nil {
		b.rep.missing(section, name, unit, err.Error())
		return
	}
	b.rep.add(section, name, unit, (after.machine-before.machine).Seconds()/after.at.Sub(before.at).Seconds())
}

// direct drives the pool over FastCGI from the bench, CONCURRENCY requests at a
// time, with the parameters and form the daemon would send: baseline (a).
func (b *bench) direct(ctx context.Context) error {
	n := b.opts.jobs
	php := b.sys.PHP.GetContainerID()
	before, err := b.snapshot(ctx, php)
	if err != nil {
		return err
	}
	if err := b.drive(ctx, n); err != nil {
		return err
	}
	after, err := b.snapshot(ctx, php)
	if err != nil {
		return err
	}
	elapsed := after.at.Sub(before.at)
	b.rep.add(secDirect, "requests/s", "1/s", float64(n)/elapsed.Seconds())
	b.rep.add(secDirect, "bench (FastCGI client) CPU per request", "µs", perItem(before.self, after.self, n))
	b.rep.add(secDirect, "php-fpm CPU per request", "µs", perItem(before.byID[php], after.byID[php], n))
	b.addEngine(secDirect, "docker engine CPU per request", before, after, n)
	b.addBusy(secDirect, "", before, after, true, php)
	return nil
}

// drive sends n requests to the pool, CONCURRENCY at a time.
func (b *bench) drive(ctx context.Context, n int) error {
	socket := b.sys.socketPath()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, b.sys.concurrency)
	for w := range b.sys.concurrency {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n) && errs[w] == nil; i = next.Add(1) {
				errs[w] = do(ctx, socket, jobForm(i), i)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// requestTimeout bounds one request to the pool: the daemon's default
// REQUEST_TIMEOUT.
const requestTimeout = time.Minute

// do sends one job's form to the pool at socket and checks that it answered
// 200. Its parameters are those of the daemon's dispatcher
// (services/internal/dispatch/params.go), so that php-fpm does the same work
// for both paths.
func do(ctx context.Context, socket string, form []byte, id int64) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	status, stderr, err := fastcgiRequest(ctx, socket, []param{
		{"GATEWAY_INTERFACE", "CGI/1.1"},
		{"SERVER_SOFTWARE", "fpmq"},
		{"SERVER_PROTOCOL", "HTTP/1.1"},
		{"REQUEST_METHOD", "POST"},
		{"SCRIPT_FILENAME", script},
		{"SCRIPT_NAME", "/bench.php"},
		{"REQUEST_URI", "/bench.php"},
		{"DOCUMENT_URI", "/bench.php"},
		{"QUERY_STRING", ""},
		{"CONTENT_TYPE", "application/x-www-form-urlencoded"},
		{"CONTENT_LENGTH", strconv.Itoa(len(form))},
		// As long as the caller's random message IDs.
		{"HTTP_X_MESSAGE_ID", fmt.Sprintf("%032x", id)},
		{"HTTP_X_ATTEMPT", "1"},
		{"HTTP_X_REDELIVERED", "0"},
		{"HTTP_X_TIMESTAMP", strconv.FormatInt(time.Now().Unix(), 10)},
	}, form)
	if err != nil {
		return err
	}
	if status != 200 {
		return fmt.Errorf("php-fpm answered %d: %s", status, bytes.TrimSpace(stderr))
	}
	return nil
}

// bareConsumer consumes a pre-filled queue with nothing but amqp091-go at
// prefetch, acking every every-th message with multiple set (every 1: each
// message on its own, as the daemon does), and records into section:
// baseline (b) and its diagnostic.
func (b *bench) bareConsumer(ctx context.Context, section string, prefetch, every int) error {
	n := b.opts.jobs
	if err := b.refill(ctx, n); err != nil {
		return err
	}
	ch, closeConn, err := b.sys.channel(ctx)
	if err != nil {
		return err
	}
	defer closeConn()
	if err := ch.Qos(prefetch, 0, false); err != nil { // false: per consumer, as the daemon
		return fmt.Errorf("set prefetch: %w", err)
	}
	rabbit := b.sys.RabbitMQ.GetContainerID()
	before, err := b.snapshot(ctx, rabbit)
	if err != nil {
		return err
	}
	deliveries, err := ch.Consume(jobQueue, "fpmq-bench",
		false, // auto-ack: no, as the daemon
		false, // exclusive
		false, // no-local
		false, // no-wait
		nil,
	)
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	for i := range n {
		d, ok := <-deliveries
		if !ok {
			return errors.New("delivery channel closed")
		}
		if (i+1)%every != 0 && i+1 != n {
			continue
		}
		if err := d.Ack(every > 1); err != nil { // multiple: this delivery and all before it
			return fmt.Errorf("ack: %w", err)
		}
	}
	after, err := b.snapshot(ctx, rabbit)
	if err != nil {
		return err
	}
	elapsed := after.at.Sub(before.at)
	b.rep.add(section, "messages/s", "1/s", float64(n)/elapsed.Seconds())
	b.rep.add(section, "bench (consumer) CPU per message", "µs", perItem(before.self, after.self, n))
	b.rep.add(section, "rabbitmq CPU per message", "µs", perItem(before.byID[rabbit], after.byID[rabbit], n))
	b.addBusy(section, "", before, after, true, rabbit)
	return nil
}

// drain is one pipeline measurement: a daemon draining a pre-filled queue.
type drain struct {
	jobs        int
	rate        float64 // jobs/s
	first, last usage
	ids         []string // daemon, php-fpm, rabbitmq
}

// pipeline measures a daemon with env over compose's settings draining n
// jobs and records its figures into section; the sweep records only the
// rate, by concurrency.
func (b *bench) pipeline(ctx context.Context, section string, n int, env map[string]string) error {
	m, err := b.drain(ctx, n, env, section == secPipeline)
	if err != nil {
		return err
	}
	if section == secSweep {
		b.rep.add(section, sweepName(m.concurrency(b.sys, env)), "1/s", m.rate)
		return nil
	}
	b.rep.add(section, "jobs/s", "1/s", m.rate)
	for i, name := range []string{"daemon", "php-fpm", "rabbitmq"} {
		b.rep.add(section, fmt.Sprintf(cpuPerJobFmt, name), "µs", perItem(m.first.byID[m.ids[i]], m.last.byID[m.ids[i]], m.jobs))
	}
	b.addEngine(section, "docker engine CPU per job", m.first, m.last, m.jobs)
	b.addBusy(section, "", m.first, m.last, false, m.ids...)
	return nil
}

// concurrency returns the daemon's CONCURRENCY under env.
func (m drain) concurrency(s *system, env map[string]string) int {
	if c, err := strconv.Atoi(env["CONCURRENCY"]); err == nil {
		return c
	}
	return s.concurrency
}

// drain pre-fills the queue with n jobs, starts a daemon with env and times
// it draining the queue. The window runs from the first poll that sees the
// queue shrink to the first that sees it empty, 10 ms apart, so the
// container's start-up is not in it; the jobs are those that left the queue
// in the window. With memory, it also records the daemon's memory into
// secPipeline.
func (b *bench) drain(ctx context.Context, n int, env map[string]string, memory bool) (m drain, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute+time.Duration(n)*10*time.Millisecond)
	defer cancel()
	if err := b.refill(ctx, n); err != nil {
		return m, err
	}
	d, err := b.sys.createDaemon(ctx, env)
	if err != nil {
		return m, err
	}
	defer func() {
		// If ctx ended, the stack's close removes it.
		if ctx.Err() == nil {
			err = errors.Join(err, b.sys.Remove(ctx, d))
		}
	}()
	ch, closeConn, err := b.sys.channel(ctx)
	if err != nil {
		return m, err
	}
	defer closeConn()

	started := make(chan error, 1)
	go func() { started <- d.Start(ctx) }()
	m.ids = []string{d.GetContainerID(), b.sys.PHP.GetContainerID(), b.sys.RabbitMQ.GetContainerID()}
	for {
		q, err := ch.QueueDeclarePassive(jobQueue, true, false, false, false, nil) // durable, not auto-delete, not exclusive, wait
		if err != nil {
			return m, fmt.Errorf("inspect queue: %w", err)
		}
		switch {
		case m.jobs == 0 && q.Messages < n:
			if q.Messages == 0 {
				return m, errors.New("the queue drained between two polls: use more jobs")
			}
			m.jobs = q.Messages
			if m.first, err = b.snapshot(ctx, m.ids...); err != nil {
				return m, err
			}
		case m.jobs > 0 && q.Messages == 0:
			if m.last, err = b.snapshot(ctx, m.ids...); err != nil {
				return m, err
			}
		}
		if !m.last.at.IsZero() {
			break
		}
		select {
		case err := <-started:
			if err != nil {
				return m, fmt.Errorf("start daemon: %w", err)
			}
			started = nil // a nil channel is never ready
		default:
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return m, fmt.Errorf("wait for the queue to drain: %w", err)
		}
	}
	if err := b.sys.settled(ctx); err != nil {
		return m, err
	}
	m.rate = float64(m.jobs) / m.last.at.Sub(m.first.at).Seconds()
	if memory {
		b.addPeakRSS(ctx, secPipeline, d)
		const cg = "daemon cgroup memory.max_usage_in_bytes"
		if peak, err := cgroupMemoryPeak(d.GetContainerID()); err != nil {
			b.rep.missing(secPipeline, cg, "MiB (info)", err.Error())
		} else {
			b.rep.add(secPipeline, cg, "MiB (info)", float64(peak)/(1<<20))
		}
	}
	return m, nil
}

// peakName names the daemon's peak RSS figure.
const peakName = "daemon peak RSS (VmHWM)"

// addPeakRSS records the peak RSS of daemon d into section.
func (b *bench) addPeakRSS(ctx context.Context, section string, d *testcontainers.DockerContainer) {
	if peak, err := peakRSS(ctx, d); err != nil {
		b.rep.missing(section, peakName, "MiB", err.Error())
	} else {
		b.rep.add(section, peakName, "MiB", float64(peak)/(1<<20))
	}
}

// sustainedName names the rate at which the deployment stores and runs jobs
// at once.
const sustainedName = "sustained rate: jobs published from the host as fast as one channel takes them, and run"

// sustained publishes the latency test's number of jobs, persistent and
// unconfirmed, as fast as one channel takes them, while the running daemon
// runs them, and records the jobs per second from the first send to the end
// of the last job. A pre-filled queue's drain leaves out what storing each
// job costs the broker; this rate includes it, and its half is the load at
// which the latency test runs.
func (b *bench) sustained(ctx context.Context, daemon string) error {
	n := b.opts.latencyJobs
	ids := []string{daemon, b.sys.PHP.GetContainerID(), b.sys.RabbitMQ.GetContainerID()}
	if err := b.clearSamples(); err != nil {
		return err
	}
	send, finish, err := b.brokerSender(ctx, "sustained", amqp.Persistent)
	if err != nil {
		return err
	}
	before, err := b.snapshot(ctx, ids...)
	if err != nil {
		return errors.Join(err, finish())
	}
	start := time.Now()
	for i := range n {
		if err := send(i); err != nil {
			return errors.Join(err, finish())
		}
	}
	if err := finish(); err != nil {
		return err
	}
	samples, err := b.waitSamples(ctx, "sustained", n)
	if err != nil {
		return err
	}
	after, err := b.snapshot(ctx, ids...)
	if err != nil {
		return err
	}
	end := slices.MaxFunc(samples, func(x, y sample) int { return int(x.end - y.end) }).end
	b.rep.add(secLatency, sustainedName, "jobs/s", float64(n)/time.UnixMicro(end).Sub(start).Seconds())
	b.addBusy(secLatency, ", sustained pass", before, after, true, ids...)
	return nil
}

// latency offers jobs at rate per second, first straight to the pool and
// then through the broker and the running daemon, each job carrying the time
// it was sent; bench.php notes when it starts, so both paths give the time
// from send to worker start, and their difference is what the daemon adds.
func (b *bench) latency(ctx context.Context, rate float64, daemon string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute+time.Duration(float64(b.opts.latencyJobs)/rate*2*float64(time.Second)))
	defer cancel()
	php, rabbit := b.sys.PHP.GetContainerID(), b.sys.RabbitMQ.GetContainerID()
	direct, err := b.pass(ctx, "direct", rate, b.directSender, php)
	if err != nil {
		return err
	}
	piped, err := b.pass(ctx, "pipeline", rate, b.pipelineSender, daemon, php, rabbit)
	if err != nil {
		return err
	}
	b.rep.add(secLatency, "added p99 (pipeline p99 - direct p99)", "ms", piped-direct)
	// A diagnostic: the same with messages RabbitMQ keeps in memory only,
	// which tells the broker's disk writes apart from the rest.
	transient, err := b.pass(ctx, "transient", rate, b.transientSender, daemon, php, rabbit)
	if err != nil {
		return err
	}
	b.rep.add(secLatency, "diagnostic: added p99 with transient messages (transient p99 - direct p99)", "ms", transient-direct)
	// A baseline: RabbitMQ alone, send -> delivery to a bare consumer, the
	// share of the added latency that no daemon can remove.
	broker, err := b.brokerPass(ctx, rate, rabbit)
	if err != nil {
		return err
	}
	b.rep.add(secLatency, brokerOnlyName, "ms", broker)
	return nil
}

// brokerOnlyName names the broker's own p99 in the latency section.
const brokerOnlyName = "diagnostic: RabbitMQ alone, p99 send -> delivery to a bare consumer"

// latencyQueue is the queue of brokerPass, which no daemon consumes.
const latencyQueue = "bench.latency"

// brokerPass offers the latency jobs at rate, persistent as the caller
// sends them, to a durable queue of their own, which a bare amqp091-go
// consumer in the bench takes as the daemon takes jobs (prefetch
// CONCURRENCY, one ack per message). It records the time from send to
// delivery, RabbitMQ's share of the pipeline's latency, and returns its
// p99 in ms.
func (b *bench) brokerPass(ctx context.Context, rate float64, rabbit string) (float64, error) {
	n := b.opts.latencyJobs
	conn, err := b.sys.dial(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, fmt.Errorf("open channel: %w", err)
	}
	if _, err := ch.QueueDeclare(latencyQueue, true, false, false, false, nil); err != nil { // durable, not auto-delete, not exclusive, wait
		return 0, fmt.Errorf("declare %s: %w", latencyQueue, err)
	}
	defer func() {
		if c, err := conn.Channel(); err == nil {
			c.QueueDelete(latencyQueue, false, false, false) // even if used or not empty; wait
		}
	}()
	if err := ch.Qos(b.sys.concurrency, 0, false); err != nil { // false: per consumer, as the daemon
		return 0, fmt.Errorf("set prefetch: %w", err)
	}
	deliveries, err := ch.Consume(latencyQueue, "fpmq-bench-latency",
		false, // auto-ack: no, as the daemon
		false, // exclusive
		false, // no-local
		false, // no-wait
		nil,
	)
	if err != nil {
		return 0, fmt.Errorf("consume: %w", err)
	}
	lat := make([]float64, 0, n)
	consumed := make(chan error, 1)
	go func() {
		for len(lat) < n {
			d, ok := <-deliveries
			if !ok {
				consumed <- fmt.Errorf("deliveries ended after %d of %d", len(lat), n)
				return
			}
			at := time.Now().UnixMicro()
			sent, err := strconv.ParseInt(string(d.Body), 10, 64)
			if err != nil {
				consumed <- fmt.Errorf("message %q: %w", d.Body, err)
				return
			}
			lat = append(lat, float64(at-sent)/1000)
			if err := d.Ack(false); err != nil { // false: this delivery only
				consumed <- fmt.Errorf("ack: %w", err)
				return
			}
		}
		consumed <- nil
	}()

	pub, err := conn.Channel()
	if err != nil {
		return 0, fmt.Errorf("open channel: %w", err)
	}
	before, err := b.snapshot(ctx, rabbit)
	if err != nil {
		return 0, err
	}
	send := func(int) error {
		m := message(strconv.AppendInt(nil, time.Now().UnixMicro(), 10))
		return pub.PublishWithContext(ctx, "", latencyQueue, true, false, m) // mandatory, not immediate
	}
	if err := pace(ctx, n, rate, send); err != nil {
		return 0, fmt.Errorf("broker: %w", err)
	}
	select {
	case err = <-consumed:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		return 0, fmt.Errorf("broker: %w", err)
	}
	after, err := b.snapshot(ctx, rabbit)
	if err != nil {
		return 0, err
	}
	return b.addLatencies("broker", lat, before, after, rabbit), nil
}

// sender returns a function that sends job i of a latency pass, and one
// that waits for what it sent and releases what it used.
type sender func(ctx context.Context) (send func(i int) error, finish func() error, err error)

// pass offers the latency jobs tagged tag at rate through a sender, records
// their latency percentiles and how busy the given containers and the whole
// machine were, and returns the p99 in ms.
func (b *bench) pass(ctx context.Context, tag string, rate float64, newSender sender, ids ...string) (float64, error) {
	n := b.opts.latencyJobs
	if err := b.clearSamples(); err != nil {
		return 0, err
	}
	send, finish, err := newSender(ctx)
	if err != nil {
		return 0, err
	}
	before, err := b.snapshot(ctx, ids...)
	if err != nil {
		return 0, errors.Join(err, finish())
	}
	if err := errors.Join(pace(ctx, n, rate, send), finish()); err != nil {
		return 0, fmt.Errorf("%s: %w", tag, err)
	}
	samples, err := b.waitSamples(ctx, tag, n)
	if err != nil {
		return 0, err
	}
	after, err := b.snapshot(ctx, ids...)
	if err != nil {
		return 0, err
	}

	lat := make([]float64, len(samples))
	for i, x := range samples {
		lat[i] = float64(x.start-x.sent) / 1000
	}
	if tag == "direct" {
		b.rep.add(secLatency, "offered rate", "1/s", rate)
	}
	return b.addLatencies(tag, lat, before, after, ids...), nil
}

// addLatencies records the p50, p99 and maximum of a latency pass's
// latencies in ms, which it sorts, and how busy the given containers and
// the machine were over it; it returns the p99.
func (b *bench) addLatencies(tag string, lat []float64, before, after usage, ids ...string) float64 {
	slices.Sort(lat)
	b.rep.add(secLatency, tag+" p50", "ms", percentile(lat, 50))
	b.rep.add(secLatency, tag+" p99", "ms", percentile(lat, 99))
	b.rep.add(secLatency, tag+" max", "ms", lat[len(lat)-1])
	b.addBusy(secLatency, ", "+tag+" pass", before, after, true, ids...)
	return percentile(lat, 99)
}

// directSender sends each job's form straight to the pool through CONCURRENCY
// workers, as the daemon would without the broker: jobs that find every
// worker busy wait in the bench, their send time already taken, as they
// would wait in the queue. Unbounded concurrency would instead overflow
// php-fpm's listen backlog whenever the machine stalls.
func (b *bench) directSender(ctx context.Context) (func(int) error, func() error, error) {
	socket := b.sys.socketPath()
	type request struct {
		form []byte
		id   int64
	}
	queue := make(chan request, b.opts.latencyJobs)
	var wg sync.WaitGroup
	errs := make([]error, b.sys.concurrency)
	for w := range b.sys.concurrency {
		wg.Go(func() {
			for r := range queue {
				if errs[w] == nil {
					errs[w] = do(ctx, socket, r.form, r.id)
				}
			}
		})
	}
	send := func(i int) error {
		queue <- request{sampleForm(i, "direct"), int64(i)}
		return nil
	}
	finish := func() error {
		close(queue)
		wg.Wait()
		return errors.Join(errs...)
	}
	return send, finish, nil
}

// pipelineSender publishes each job to the queue, as the caller would but
// without waiting for confirms, which would pace the sender by the broker.
func (b *bench) pipelineSender(ctx context.Context) (func(int) error, func() error, error) {
	return b.brokerSender(ctx, "pipeline", amqp.Persistent)
}

// transientSender is pipelineSender with transient messages, which the
// broker does not write to disk.
func (b *bench) transientSender(ctx context.Context) (func(int) error, func() error, error) {
	return b.brokerSender(ctx, "transient", amqp.Transient)
}

// brokerSender publishes each job to the queue tagged tag, with the
// delivery mode mode, without waiting for confirms.
func (b *bench) brokerSender(ctx context.Context, tag string, mode uint8) (func(int) error, func() error, error) {
	conn, err := b.sys.dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("open channel: %w", err)
	}
	send := func(i int) error {
		m := message(sampleJob(i, tag, 0))
		m.DeliveryMode = mode
		return publishMessage(ctx, ch, m)
	}
	return send, conn.Close, nil
}

// pace calls send(i) for i from 0 to n-1 at rate calls per second, on a
// schedule fixed at the start: a late call does not delay the next ones, so
// a slow system under test cannot slow the offered load down.
func pace(ctx context.Context, n int, rate float64, send func(i int) error) error {
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			if err := sleep(ctx, d); err != nil {
				return err
			}
		}
		if err := send(i); err != nil {
			return err
		}
	}
	return nil
}

// article runs the original article's test on the running daemon of
// CONCURRENCY c: n jobs that each sleep nap, published at once, against
// the ideal time of c children working in parallel, recorded into section.
// The end is when the last worker finished, as bench.php notes it; the
// daemon acks right after, and rabbitmqctl then confirms that nothing is
// left unacked.
func (b *bench) article(ctx context.Context, section string, n int, nap time.Duration, c int) error {
	ideal := time.Duration(math.Ceil(float64(n)/float64(c))) * nap
	ctx, cancel := context.WithTimeout(ctx, time.Minute+3*ideal)
	defer cancel()
	if err := b.clearSamples(); err != nil {
		return err
	}
	start := time.Now()
	if err := b.publishConfirmed(ctx, n, func(i int) []byte { return sampleJob(i, "article", nap) }); err != nil {
		return err
	}
	samples, err := b.waitSamples(ctx, "article", n)
	if err != nil {
		return err
	}
	if err := b.sys.settled(ctx); err != nil {
		return err
	}
	end := slices.MaxFunc(samples, func(x, y sample) int { return int(x.end - y.end) }).end
	wall := time.UnixMicro(end).Sub(start)
	name := fmt.Sprintf("wall time, %d jobs of %s on %d (ideal %s)", n, nap, c, ideal)
	b.rep.add(section, name, "s", wall.Seconds())
	b.rep.add(section, deviationName, "%", 100*(wall-ideal).Seconds()/ideal.Seconds())
	return nil
}

// deviationName names an article test's deviation from its ideal time.
const deviationName = "deviation from the ideal"

// The publishers' figures.
const (
	callerRate    = "caller - (with confirms)"
	plainRate     = "plain amqp091-go publisher (no confirms)"
	confirmedRate = "diagnostic: plain amqp091-go publisher with confirms, all in flight at once"
)

// publishers compares the caller, publishing with confirms, with a plain
// amqp091-go publisher without confirms in the bench and, as a diagnostic,
// the same publisher with confirms, each on the same empty queue. Each rate
// runs from its start to the last job in the queue.
func (b *bench) publishers(ctx context.Context) error {
	n := b.opts.callerJobs
	// Opened beforehand, so that connecting is in no publisher's time.
	poll, closeControl, err := b.sys.channel(ctx)
	if err != nil {
		return err
	}
	defer closeControl()
	var input strings.Builder
	for i := range n {
		fmt.Fprintln(&input, i+1)
	}
	for _, p := range []struct {
		name    string
		publish func(ctx context.Context) error
	}{
		{callerRate, func(ctx context.Context) error { return b.runCaller(ctx, input.String()) }},
		{plainRate, func(ctx context.Context) error { return b.plainPublisher(ctx, n, false) }},
		// The least a publisher with confirms can do: publish everything,
		// then wait for the confirms. What it loses against the plain
		// publisher is the broker's price of confirms, which no confirming
		// publisher avoids.
		{confirmedRate, func(ctx context.Context) error { return b.plainPublisher(ctx, n, true) }},
	} {
		if err := b.purge(ctx); err != nil {
			return err
		}
		start := time.Now()
		if err := p.publish(ctx); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		if err := waitReady(ctx, poll, n); err != nil {
			return fmt.Errorf("after %s: %w", p.name, err)
		}
		b.rep.add(secPublish, p.name, "jobs/s", float64(n)/time.Since(start).Seconds())
	}
	return b.purge(ctx)
}

// runCaller runs the caller binary with "-" and input on its standard
// input, until it exits.
func (b *bench) runCaller(ctx context.Context, input string) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, b.sys.callerBin, "-")
	cmd.Env = []string{"AMQP_URL=" + b.sys.URLAt(stack.CallerUser, b.sys.endpoint), "AMQP_QUEUE=" + jobQueue, "CALLER_TIMEOUT=5m"}
	cmd.Stdin = strings.NewReader(input)
	cmd.Stdout = io.Discard
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

// plainPublisher publishes n jobs on a channel of its own, as the caller
// publishes them. With confirm, the channel is in confirm mode and it
// returns once the broker confirmed every job, having waited for none
// before the last was published.
func (b *bench) plainPublisher(ctx context.Context, n int, confirm bool) error {
	ch, closeConn, err := b.sys.channel(ctx)
	if err != nil {
		return err
	}
	defer closeConn()
	if !confirm {
		for i := range n {
			if err := publish(ctx, ch, jobJSON(int64(i+1))); err != nil {
				return err
			}
		}
		return nil
	}
	if err := ch.Confirm(false); err != nil { // false: wait for confirm.select-ok
		return fmt.Errorf("enable publisher confirms: %w", err)
	}
	confirms := make([]*amqp.DeferredConfirmation, 0, n)
	for i := range n {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", jobQueue, true, false, message(jobJSON(int64(i+1)))) // mandatory, not immediate
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		confirms = append(confirms, dc)
	}
	for _, dc := range confirms {
		if ok, err := dc.WaitContext(ctx); err != nil || !ok {
			return fmt.Errorf("job %d not confirmed (%v)", dc.DeliveryTag, err)
		}
	}
	return nil
}

// waitReady waits until the queue holds n ready jobs, asking on ch every
// millisecond so that the wait adds little to a publisher's time.
func waitReady(ctx context.Context, ch *amqp.Channel, n int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		q, err := ch.QueueDeclarePassive(jobQueue, true, false, false, false, nil) // durable, not auto-delete, not exclusive, wait
		if err != nil {
			return fmt.Errorf("inspect queue: %w", err)
		}
		if q.Messages >= n {
			if q.Messages > n {
				return fmt.Errorf("%d jobs in the queue, want %d", q.Messages, n)
			}
			return nil
		}
		if err := sleep(ctx, time.Millisecond); err != nil {
			return fmt.Errorf("%d of %d jobs in the queue: %w", q.Messages, n, err)
		}
	}
}

// purge empties the job queue.
func (b *bench) purge(ctx context.Context) error {
	ch, closeConn, err := b.sys.channel(ctx)
	if err != nil {
		return err
	}
	defer closeConn()
	if _, err := ch.QueuePurge(jobQueue, false); err != nil { // false: wait for purge-ok
		return fmt.Errorf("purge: %w", err)
	}
	return nil
}

// refill empties the queue and publishes n jobs {"number":N} into it, as
// the caller would. Nothing consumes meanwhile.
func (b *bench) refill(ctx context.Context, n int) error {
	if err := b.purge(ctx); err != nil {
		return err
	}
	return b.publishConfirmed(ctx, n, func(i int) []byte { return jobJSON(int64(i + 1)) })
}

// publishConfirmed publishes body(i) for i from 0 to n-1 with publisher
// confirms and returns once the broker confirmed them all.
func (b *bench) publishConfirmed(ctx context.Context, n int, body func(i int) []byte) error {
	ch, closeConn, err := b.sys.channel(ctx)
	if err != nil {
		return err
	}
	defer closeConn()
	return stack.PublishConfirmed(ctx, ch, jobQueue, n, func(i int) amqp.Publishing { return message(body(i)) })
}

// publish publishes one job without waiting for a confirm.
func publish(ctx context.Context, ch *amqp.Channel, body []byte) error {
	return publishMessage(ctx, ch, message(body))
}

// publishMessage publishes m to the job queue without waiting for a confirm.
func publishMessage(ctx context.Context, ch *amqp.Channel, m amqp.Publishing) error {
	err := ch.PublishWithContext(ctx, "", jobQueue,
		true,  // mandatory
		false, // immediate
		m)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

// message wraps a job body as the caller publishes it, with a random
// message id as long as the caller's.
func message(body []byte) amqp.Publishing {
	var id [16]byte
	rand.Read(id[:]) // crypto/rand.Read never fails: it crashes the program instead
	return stack.Job(hex.EncodeToString(id[:]), body)
}

// sampleJob returns the message of a job that bench.php records under tag,
// carrying the time it is built as its send time, and sleeping nap if
// positive.
func sampleJob(i int, tag string, nap time.Duration) []byte {
	b := fmt.Appendf(nil, `{"number":%d,"tag":%q`, i, tag)
	if nap > 0 {
		b = fmt.Appendf(b, `,"sleep":%g`, nap.Seconds())
	}
	return fmt.Appendf(b, `,"sent_us":%d}`, time.Now().UnixMicro())
}

// sampleForm returns the form the daemon sends php-fpm for
// sampleJob(i, tag, 0), as PHP's http_build_query builds it: the same
// fields in the same order.
func sampleForm(i int, tag string) []byte {
	return fmt.Appendf(nil, "number=%d&tag=%s&sent_us=%d", i, url.QueryEscape(tag), time.Now().UnixMicro())
}

// jobJSON returns the message of a job with just a number, as the caller
// publishes it.
func jobJSON(n int64) []byte { return fmt.Appendf(nil, `{"number":%d}`, n) }

// jobForm returns the form the daemon sends php-fpm for jobJSON(n).
func jobForm(n int64) []byte { return fmt.Appendf(nil, "number=%d", n) }

// sample is one line of bench.php's samples.log, times in µs.
type sample struct {
	number, sent, start, end int64
}

// parseSamples returns the samples of r that carry tag.
func parseSamples(r io.Reader, tag string) ([]sample, error) {
	var out []sample
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != tag {
			continue
		}
		if len(f) != 5 {
			return nil, fmt.Errorf("samples: malformed line %q", sc.Text())
		}
		var v [4]int64
		for i := range v {
			n, err := strconv.ParseInt(f[i+1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("samples: malformed line %q: %w", sc.Text(), err)
			}
			v[i] = n
		}
		out = append(out, sample{v[0], v[1], v[2], v[3]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("samples: %w", err)
	}
	return out, nil
}

// waitSamples waits until samples.log holds n samples tagged tag, one per
// job number (a job run twice would be redelivered, which is a failure
// here), and returns them.
func (b *bench) waitSamples(ctx context.Context, tag string, n int) ([]sample, error) {
	for {
		s, err := b.readSamples(tag)
		if err != nil {
			return nil, err
		}
		if len(s) >= n {
			seen := map[int64]bool{}
			for _, x := range s {
				seen[x.number] = true
			}
			if len(s) > n || len(seen) != n {
				return nil, fmt.Errorf("%d %s samples for %d distinct jobs, want %d", len(s), tag, len(seen), n)
			}
			return s, nil
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return nil, fmt.Errorf("%d of %d %s samples: %w", len(s), n, tag, err)
		}
	}
}

func (b *bench) readSamples(tag string) ([]sample, error) {
	f, err := os.Open(b.sys.samplesPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("samples: %w", err)
	}
	defer f.Close()
	return parseSamples(f, tag)
}

// clearSamples deletes samples.log; bench.php creates it again. Nothing must
// be running on the pool.
func (b *bench) clearSamples() error {
	if err := os.Remove(b.sys.samplesPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("clear samples: %w", err)
	}
	return nil
}

// perRep applies f to the values of each repetition of the figures named,
// NaN where one is missing.
func perRep(f func(v []float64) float64, figs ...[]float64) []float64 {
	n := 0
	for _, v := range figs {
		n = max(n, len(v))
	}
	out := make([]float64, n)
	for i := range n {
		v := make([]float64, len(figs))
		for j, fig := range figs {
			v[j] = math.NaN()
			if i < len(fig) {
				v[j] = fig[i]
			}
		}
		out[i] = f(v)
	}
	return out
}

func sum(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s
}

// addDerived adds, repetition by repetition, the CPU limit the baselines
// set and the pipeline's whole cost per job.
func (b *bench) addDerived() {
	r := b.rep
	baselines := perRep(sum,
		r.values(secBare, "rabbitmq CPU per message"),
		r.values(secBare, "bench (consumer) CPU per message"),
		r.values(secDirect, "php-fpm CPU per request"),
		r.values(secDirect, "bench (FastCGI client) CPU per request"))
	whole := perRep(sum,
		r.values(secPipeline, fmt.Sprintf(cpuPerJobFmt, "daemon")),
		r.values(secPipeline, fmt.Sprintf(cpuPerJobFmt, "php-fpm")),
		r.values(secPipeline, fmt.Sprintf(cpuPerJobFmt, "rabbitmq")),
		r.values(secPipeline, "docker engine CPU per job"))
	cores := float64(runtime.NumCPU())
	for i := range baselines {
		r.add(secDerived, "baselines' CPU per item: rabbitmq and consumer (b), php-fpm and client (a)", "µs", baselines[i])
		r.add(secDerived, limitName(), "1/s", cores*1e6/baselines[i])
	}
	for i := range whole {
		r.add(secDerived, "pipeline CPU per job: daemon, php-fpm, rabbitmq, docker engine", "µs", whole[i])
	}
	confirmed := r.values(secPublish, confirmedRate)
	brokers, callers := ratios(confirmed, r.values(secPublish, plainRate)), ratios(r.values(secPublish, callerRate), confirmed)
	for i := range brokers {
		r.add(secPublish, "diagnostic: confirming publisher / plain publisher, the broker's price of confirms", "ratio", brokers[i])
		r.add(secPublish, "diagnostic: caller / confirming publisher, the caller's own price", "ratio", callers[i])
	}
}

// limitName names the CPU limit figure.
func limitName() string {
	return fmt.Sprintf("CPU limit: %d cores / the baselines' CPU per item", runtime.NumCPU())
}

// addTargets computes the benchmark's targets from the figures, repetition
// by repetition: issue 14's seven.
func (b *bench) addTargets() {
	b.addDerived()
	r := b.rep
	consumerPlusClient := combine(r.values(secBare, "bench (consumer) CPU per message"),
		r.values(secDirect, "bench (FastCGI client) CPU per request"),
		func(x, y float64) float64 { return x + y })
	baselines := r.values(secDerived, "baselines' CPU per item: rabbitmq and consumer (b), php-fpm and client (a)")
	limit := r.values(secDerived, limitName())
	abs := func(v []float64) []float64 {
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = math.Abs(x)
		}
		return out
	}
	var bigDev []float64
	for _, f := range r.figures {
		if f.section == secBig && f.name == deviationName {
			bigDev = f.values
		}
	}
	r.targets = []target{
		{name: "1. efficiency: pipeline jobs/s / CPU limit", values: ratios(r.values(secPipeline, "jobs/s"), limit), limit: 0.65},
		{name: "2. daemon CPU/job / (consumer CPU/msg + FastCGI client CPU/req)", values: ratios(r.values(secPipeline, fmt.Sprintf(cpuPerJobFmt, "daemon")), consumerPlusClient), limit: 1.2, atMost: true},
		{name: "3. whole pipeline CPU/job / baselines' CPU per item", values: ratios(r.values(secDerived, "pipeline CPU per job: daemon, php-fpm, rabbitmq, docker engine"), baselines), limit: 1.5, atMost: true},
		{name: fmt.Sprintf("4a. %d jobs of %s on %d: |wall - ideal| / ideal", bigJobs, bigNap, bigC), unit: "%", values: abs(bigDev), limit: 5, atMost: true},
		{name: fmt.Sprintf("4b. article test, %d jobs of %s on %d: |wall - ideal| / ideal", b.opts.articleJobs, b.opts.articleSleep, b.sys.concurrency), unit: "%", values: abs(r.values(secArticle, deviationName)), limit: 1, atMost: true},
		{name: "5. added p99 latency at half load", unit: "ms", values: r.values(secLatency, "added p99 (pipeline p99 - direct p99)"), limit: 2, atMost: true},
		{name: fmt.Sprintf("6. daemon peak RSS (VmHWM), %d jobs at once", memoryC), unit: "MiB", values: r.values(secMemory, peakName), limit: 40, atMost: true},
		{name: "7. caller jobs/s / unconfirmed publisher jobs/s", values: ratios(r.values(secPublish, callerRate), r.values(secPublish, plainRate)), limit: 0.7},
	}
}
