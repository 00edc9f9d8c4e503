package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/testcontainers/testcontainers-go"

	"github.com/fpmq/fpmq/integration/stack"
)

// runAll measures: once, a warm-up of each framework's worker; then in
// each repetition, per framework, the worker's drain and fpmq's drain
// under each variant, so that all figures of a repetition are side by side.
func (b *bench) runAll(ctx context.Context) error {
	for _, fw := range frameworks {
		b.progress("%s: warming up %s (its /tmp caches)", fw.name, fw.worker)
		if _, err := b.drain(ctx, fw, "", b.warmJobs(), false); err != nil {
			return err
		}
	}
	for rep := range b.opts.reps {
		for _, fw := range frameworks {
			b.progress("rep %d/%d: %s, %d jobs under %s", rep+1, b.opts.reps, fw.name, b.opts.jobs, fw.worker)
			m, err := b.drain(ctx, fw, "", b.opts.jobs, true)
			if err != nil {
				return err
			}
			b.record1(fw, fw.worker, rep, m)
		}
		for _, v := range b.opts.variants {
			for _, fw := range frameworks {
				if err := b.usePool(ctx, v, fw); err != nil {
					return err
				}
				b.progress("rep %d/%d: %s, %d jobs through fpmq (%s)", rep+1, b.opts.reps, fw.name, b.opts.jobs, v.name)
				if _, err := b.drain(ctx, fw, v.name, b.warmJobs(), false); err != nil {
					return err
				}
				m, err := b.drain(ctx, fw, v.name, b.opts.jobs, true)
				if err != nil {
					return err
				}
				b.record1(fw, "fpmq "+v.name, rep, m)
			}
		}
	}
	return nil
}

// warmJobs is how many jobs warm a side up before it is measured: every
// process has run several.
func (b *bench) warmJobs() int { return max(100, 10*b.opts.procs) }

// usePool restarts php-fpm with v's settings for fw, unless it runs them
// already, and writes the applications' settings into its fresh /tmp.
func (b *bench) usePool(ctx context.Context, v variant, fw framework) error {
	ini := v.ini(fw)
	if b.current == ini {
		return nil
	}
	b.progress("restarting php-fpm with the pool settings %q for %s", v.name, fw.name)
	if err := os.WriteFile(b.hostPath("pool/ini/fwbench.ini"), []byte(ini), 0o644); err != nil {
		return fmt.Errorf("write the pool settings: %w", err)
	}
	timeout := stack.StopTimeout
	if err := b.sys.PHP.Stop(ctx, &timeout); err != nil {
		return fmt.Errorf("stop php-fpm: %w", err)
	}
	// Start waits for the pools to answer, as at the stack's start.
	if err := b.sys.PHP.Start(ctx); err != nil {
		return fmt.Errorf("start php-fpm with %s: %w", v.name, err)
	}
	b.current = ini
	return b.preparePool(ctx)
}

// measurement is one timed drain.
type measurement struct {
	jobs        int
	rate        float64 // jobs/s
	first, last usage
	ids         []string // the measured containers: the consumer or daemon first, then php-fpm if it works, RabbitMQ last
}

// drain pre-fills fw's queue with n copies of its captured job, starts
// the side that runs them (fpmq's daemon if variant is set, else the
// framework's workers) and, if timed, times the drain: from the first
// poll (every 10 ms) that sees the queue shrink to the first that sees it
// empty, so that the start of the container is outside the window. It
// returns once nothing is ready or unacked, with the side removed.
func (b *bench) drain(ctx context.Context, fw framework, variant string, n int, timed bool) (m measurement, err error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute+time.Duration(n)*20*time.Millisecond)
	defer cancel()
	ch, closeConn, err := b.channel()
	if err != nil {
		return m, err
	}
	defer closeConn()
	captured := b.captured[fw.name]
	if err := stack.PublishConfirmed(ctx, ch, fw.queue, n, func(i int) amqp.Publishing { return fw.copyOf(captured, i) }); err != nil {
		return m, fmt.Errorf("%s: pre-fill: %w", fw.name, err)
	}
	var c *testcontainers.DockerContainer
	if variant != "" {
		c, err = b.sys.Daemon(ctx, stack.Run{Env: b.daemonEnv(fw), NoStart: true})
		m.ids = []string{"", b.sys.PHP.GetContainerID(), b.sys.RabbitMQ.GetContainerID()}
	} else {
		c, err = b.sys.PHPCommand(ctx, stack.Run{
			Env:     map[string]string{"AMQP_URL": b.adminURL(), "MESSENGER_TRANSPORT_DSN": b.adminURL()},
			Args:    []string{"sh", "-c", b.consumerScript(fw)},
			Binds:   []string{b.consumerTmp(fw) + ":/tmp"},
			NoStart: true,
		})
		m.ids = []string{"", b.sys.RabbitMQ.GetContainerID()}
	}
	if err != nil {
		return m, fmt.Errorf("%s: %w", fw.name, err)
	}
	m.ids[0] = c.GetContainerID()
	defer func() {
		if ctx.Err() == nil { // else the stack's close removes it
			err = errors.Join(err, b.sys.Remove(ctx, c))
		}
	}()
	if err := c.Start(ctx); err != nil {
		return m, fmt.Errorf("%s: start: %w", fw.name, err)
	}
	for {
		q, err := ch.QueueDeclarePassive(fw.queue, true, false, false, false, nil) // durable, not auto-delete, not exclusive, wait
		if err != nil {
			return m, fmt.Errorf("inspect queue %s: %w", fw.queue, err)
		}
		switch {
		case timed && m.jobs == 0 && q.Messages < n:
			if q.Messages == 0 {
				return m, errors.New("the queue drained between two polls: use more jobs")
			}
			m.jobs = q.Messages
			if m.first, err = b.snapshot(ctx, m.ids...); err != nil {
				return m, err
			}
		case q.Messages == 0 && (m.jobs > 0 || !timed):
			if timed {
				if m.last, err = b.snapshot(ctx, m.ids...); err != nil {
					return m, err
				}
				m.rate = float64(m.jobs) / m.last.at.Sub(m.first.at).Seconds()
			}
			return m, b.settled(ctx, fw.queue, variant != "")
		}
		if state, err := c.State(ctx); err == nil && !state.Running && state.ExitCode != 0 {
			logs, _ := stack.Logs(ctx, c)
			return m, fmt.Errorf("%s: the container exited %d: %s", fw.name, state.ExitCode, tail(logs, 2000))
		}
		select {
		case <-ctx.Done():
			return m, fmt.Errorf("%s: wait for %s to drain: %w", fw.name, fw.queue, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// settled waits until the queue has nothing ready or unacked: the last
// jobs ran and were acked (rabbitmqctl, about a second a look). With
// fpmq, a job that failed waits in a retry queue or the dead-letter queue
// (queue.*): that is an error, since the drain then timed failures.
func (b *bench) settled(ctx context.Context, queue string, fpmq bool) error {
	for {
		qs, err := b.sys.Queues(ctx)
		if err != nil {
			return err
		}
		q := qs[queue]
		if q.Ready == 0 && q.Unacked == 0 {
			for name, other := range qs {
				if fpmq && strings.HasPrefix(name, queue+".") && other.Ready > 0 {
					return fmt.Errorf("%d jobs in %s: runs failed (see the daemon's log)", other.Ready, name)
				}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s to settle (%d ready, %d unacked): %w", queue, q.Ready, q.Unacked, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// record1 records measurement m of fw's side in repetition rep: jobs/s,
// CPU per job of each container and in all, and the machine's busy cores.
func (b *bench) record1(fw framework, side string, rep int, m measurement) {
	names := []string{"worker container", "rabbitmq"}
	if len(m.ids) == 3 {
		names = []string{"daemon", "php-fpm", "rabbitmq"}
	}
	b.rep.set(fw.name, side+": jobs/s", "1/s", rep, m.rate)
	var total time.Duration
	for i, id := range m.ids {
		d := m.last.byID[id] - m.first.byID[id]
		total += d
		b.rep.set(fw.name, side+": CPU per job, "+names[i], "µs", rep, perJob(d, m.jobs))
	}
	b.rep.set(fw.name, side+": CPU per job, all", "µs", rep, perJob(total, m.jobs))
	if m.first.machine > 0 && m.last.machine > 0 {
		elapsed := m.last.at.Sub(m.first.at).Seconds()
		b.rep.set(fw.name, side+": cores busy, whole machine", fmt.Sprintf("of %d", runtime.NumCPU()), rep,
			(m.last.machine-m.first.machine).Seconds()/elapsed)
	}
}

func perJob(d time.Duration, jobs int) float64 {
	return float64(d) / float64(time.Microsecond) / float64(jobs)
}

// addRatios adds, per framework, fpmq's rate and CPU per job under each
// variant against the worker's, per repetition; the shipped pool's rate
// ratio is the target (≥ 0.5).
func (b *bench) addRatios() {
	for _, fw := range frameworks {
		workerRate := b.rep.values(fw.name, fw.worker+": jobs/s")
		workerCPU := b.rep.values(fw.name, fw.worker+": CPU per job, all")
		for _, v := range b.opts.variants {
			side := "fpmq " + v.name
			rate := ratios(b.rep.values(fw.name, side+": jobs/s"), workerRate)
			f := b.rep.figure(fw.name+": fpmq ÷ "+fw.worker, side+": jobs/s ÷ "+fw.worker+"'s", "ratio")
			f.values = rate
			if v.name == "shipped" {
				f.limit = 0.5
			}
			cpu := b.rep.figure(fw.name+": fpmq ÷ "+fw.worker, side+": CPU per job ÷ "+fw.worker+"'s", "ratio")
			cpu.values = ratios(b.rep.values(fw.name, side+": CPU per job, all"), workerCPU)
		}
	}
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
