package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/testcontainers/testcontainers-go"
)

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
	if err := b.timeDrain(ctx, ch, n, started, &m); err != nil {
		return m, err
	}
	if err := b.sys.settled(ctx); err != nil {
		return m, err
	}
	m.rate = float64(m.jobs) / m.last.at.Sub(m.first.at).Seconds()
	if memory {
		b.addDaemonMemory(ctx, d)
	}
	return m, nil
}

// timeDrain polls the job queue on ch every 10 ms while the daemon whose
// start started reports drains it, until it is empty, and fills m's window:
// the snapshot at the first poll that sees fewer than n jobs, the jobs then
// left, and the snapshot at the first poll that sees none.
func (b *bench) timeDrain(ctx context.Context, ch *amqp.Channel, n int, started <-chan error, m *drain) error {
	for {
		q, err := ch.QueueDeclarePassive(jobQueue, true, false, false, false, nil) // durable, not auto-delete, not exclusive, wait
		if err != nil {
			return fmt.Errorf("inspect queue: %w", err)
		}
		switch {
		case m.jobs == 0 && q.Messages < n:
			if q.Messages == 0 {
				return errors.New("the queue drained between two polls: use more jobs")
			}
			m.jobs = q.Messages
			if m.first, err = b.snapshot(ctx, m.ids...); err != nil {
				return err
			}
		case m.jobs > 0 && q.Messages == 0:
			m.last, err = b.snapshot(ctx, m.ids...)
			return err
		}
		select {
		case err := <-started:
			if err != nil {
				return fmt.Errorf("start daemon: %w", err)
			}
			started = nil // a nil channel is never ready
		default:
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return fmt.Errorf("wait for the queue to drain: %w", err)
		}
	}
}

// addDaemonMemory records daemon d's peak RSS and its cgroup's peak memory
// into secPipeline, or why they are unknown.
func (b *bench) addDaemonMemory(ctx context.Context, d *testcontainers.DockerContainer) {
	b.addPeakRSS(ctx, secPipeline, d)
	const cg = "daemon cgroup memory.max_usage_in_bytes"
	if peak, err := cgroupMemoryPeak(d.GetContainerID()); err != nil {
		b.rep.missing(secPipeline, cg, "MiB (info)", err.Error())
	} else {
		b.rep.add(secPipeline, cg, "MiB (info)", float64(peak)/(1<<20))
	}
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
