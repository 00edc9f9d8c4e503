package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

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
