package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fpmq/fpmq/integration/stack"
)

// Timings of the soak.
const (
	batchEvery  = 5 * time.Second  // how often a caller is started
	sampleEvery = 5 * time.Second  // how often the steady daemon's RSS is read
	pollEvery   = 10 * time.Second // how often the worker log is read while draining
	// callerTimeout is each caller's CALLER_TIMEOUT: long enough to ride
	// out a node's restart.
	callerTimeout = "60s"
)

// soak is one run.
type soak struct {
	sys  *system
	cfg  settings
	logf func(string, ...any)
	rng  *rand.Rand // the fault schedule; used by the fault loop only

	mu      sync.Mutex
	samples []sample // of the steady daemon's RSS
}

// sample is one reading of the steady daemon's RSS.
type sample struct {
	at  time.Duration // since the soak started
	rss uint64        // bytes
}

// run publishes the jobs while faults strike, waits for every job to run,
// and counts. Its error says why the run itself broke; the result's
// verdict says whether the system passed.
func (s *soak) run(ctx context.Context) (result, error) {
	begin := time.Now()
	var res result
	var wg sync.WaitGroup
	sampling, stopSampling := context.WithCancel(ctx)
	wg.Go(func() { s.sample(sampling, begin) })

	faulting, stopFaults := context.WithCancel(ctx)
	faults := make(chan faultLog, 1)
	go func() { faults <- s.faults(faulting) }()

	confirmed, callerFailures, pubErr := s.publish(ctx)
	stopFaults()
	res.faults = <-faults
	res.sent, res.callerFailures = len(confirmed), callerFailures
	s.logf("published: %d of %d jobs confirmed (%d caller runs failed and were retried); faults over", len(confirmed), s.cfg.jobs, callerFailures)

	counts, drainErr := s.drain(ctx, confirmed)
	stopSampling()
	wg.Wait()
	s.mu.Lock()
	res.samples = s.samples
	s.mu.Unlock()

	dead, deadErr := s.sys.Queue(context.WithoutCancel(ctx), stack.DeadQueue)
	res.deadLettered = dead.Ready
	res.count(confirmed, counts)
	return res, errors.Join(pubErr, res.faults.err, drainErr, deadErr)
}

// publish publishes jobs 1 to SOAK_JOBS with the caller image, a batch
// every batchEvery so that they spread over SOAK_DURATION, through
// AMQP_ADDRESSES. A job a caller did not report as confirmed (its run
// failed) goes into a later batch, with a new message id: the broker may
// have taken it, so it may run twice. It returns the jobs confirmed and how
// many caller runs failed; it stops early only when ctx ends or, past
// SOAK_DURATION and SOAK_DRAIN_TIMEOUT, jobs are still unconfirmed.
func (s *soak) publish(ctx context.Context) (map[int64]bool, int, error) {
	batches := max(1, int(s.cfg.duration/batchEvery))
	size := (s.cfg.jobs + batches - 1) / batches
	pending := make([]int64, s.cfg.jobs)
	for i := range pending {
		pending[i] = int64(i + 1)
	}
	env := s.sys.ClusterEnv(stack.CallerUser)
	env["CALLER_TIMEOUT"] = callerTimeout
	confirmed := map[int64]bool{}
	failures := 0
	deadline := time.Now().Add(s.cfg.duration + s.cfg.drainTimeout)
	next := time.Now()
	for len(pending) > 0 {
		if time.Now().After(deadline) {
			return confirmed, failures, fmt.Errorf("after %s, %d jobs still unconfirmed", s.cfg.duration+s.cfg.drainTimeout, len(pending))
		}
		if !sleepUntil(ctx, next) {
			return confirmed, failures, ctx.Err()
		}
		next = next.Add(batchEvery)
		batch := pending[:min(size, len(pending))]
		got, err := s.callOnce(ctx, env, batch)
		var again []int64
		for _, n := range batch {
			if got[n] {
				confirmed[n] = true
			} else {
				again = append(again, n)
			}
		}
		if err != nil {
			failures++
			s.logf("caller: %v; %d of %d jobs confirmed, the rest go again", err, len(batch)-len(again), len(batch))
		}
		pending = append(again, pending[len(batch):]...)
	}
	return confirmed, failures, nil
}

// callOnce runs the caller once with the numbers and returns those it
// printed as sent, and an error if it did not exit 0.
func (s *soak) callOnce(ctx context.Context, env map[string]string, numbers []int64) (map[int64]bool, error) {
	args := make([]string, len(numbers))
	for i, n := range numbers {
		args[i] = strconv.FormatInt(n, 10)
	}
	c, err := s.sys.Caller(ctx, stack.Run{Env: env, Args: args})
	if c != nil {
		defer s.sys.Remove(context.WithoutCancel(ctx), c)
	}
	if err != nil {
		return nil, err
	}
	logs, err := stack.Logs(ctx, c)
	if err != nil {
		return nil, err
	}
	sent := parseSent(logs)
	code, err := stack.ExitCode(ctx, c)
	if err != nil {
		return sent, err
	}
	if code != 0 {
		return sent, fmt.Errorf("caller exited %d: %s", code, lastLine(logs))
	}
	return sent, nil
}

// parseSent returns the numbers of the caller's " [x] Message sent: N" lines.
func parseSent(logs string) map[int64]bool {
	sent := map[int64]bool{}
	for line := range strings.Lines(logs) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "[x] Message sent: "); ok {
			if n, err := strconv.ParseInt(rest, 10, 64); err == nil {
				sent[n] = true
			}
		}
	}
	return sent
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// sleepUntil waits until t or until ctx ends, and reports whether t came.
func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// faultLog is what the fault loop did.
type faultLog struct {
	daemon, phpfpm, node int      // restarts of each kind
	events               []string // one line per fault, with its time
	err                  error    // a fault that could not be undone
}

// faults restarts, until ctx ends, one part at a time after a pause drawn
// from half to 1.5 times SOAK_FAULT_INTERVAL: the restarted daemon
// (SIGTERM, SIGKILL after 10 s), php-fpm, or a random RabbitMQ node, each
// as likely. After a node's restart it waits until the cluster has all its
// nodes again, so that a quorum always remains. Each fault is undone even
// if ctx ends meanwhile.
func (s *soak) faults(ctx context.Context) faultLog {
	var log faultLog
	begin := time.Now()
	for {
		pause := time.Duration(float64(s.cfg.faultInterval) * (0.5 + s.rng.Float64()))
		if !sleepUntil(ctx, time.Now().Add(pause)) {
			return log
		}
		undo := context.WithoutCancel(ctx)
		var what string
		var err error
		switch s.rng.IntN(3) {
		case 0:
			what, err = "daemon restarted", restart(undo, s.sys.restarted, 10*time.Second)
			log.daemon++
		case 1:
			what, err = "php-fpm restarted", restart(undo, s.sys.PHP, 20*time.Second)
			log.phpfpm++
		default:
			i := s.rng.IntN(nodes)
			what = stack.NodeHost(i+1) + " restarted"
			if err = restart(undo, s.sys.Nodes[i], stack.StopTimeout); err == nil {
				err = s.awaitCluster(undo, i)
			}
			log.node++
		}
		event := fmt.Sprintf("%s %s", time.Since(begin).Round(time.Second), what)
		if err != nil {
			event += ": " + err.Error()
			log.err = errors.Join(log.err, fmt.Errorf("%s: %w", what, err))
		}
		log.events = append(log.events, event)
		s.logf("fault: %s", event)
		if err != nil {
			return log // the system is no longer the one under test
		}
	}
}

// restarter is a container that can be stopped and started.
type restarter interface {
	Stop(ctx context.Context, timeout *time.Duration) error
	Start(ctx context.Context) error
}

// restart stops c (SIGTERM, then SIGKILL after timeout) and starts it
// again, waiting until it is ready as when it first started.
func restart(ctx context.Context, c restarter, timeout time.Duration) error {
	if err := c.Stop(ctx, &timeout); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	if err := c.Start(ctx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	return nil
}

// awaitCluster waits until node i (from 0) sees every node running again.
func (s *soak) awaitCluster(ctx context.Context, i int) error {
	deadline := time.Now().Add(stack.ClusterFormTimeout)
	for {
		running, err := s.sys.RunningNodes(ctx, s.sys.Nodes[i])
		if err == nil && len(running) == nodes {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s the node sees %v running (%v)", stack.ClusterFormTimeout, running, err)
		}
		time.Sleep(time.Second)
	}
}

// sample reads the steady daemon's RSS every sampleEvery until ctx ends.
func (s *soak) sample(ctx context.Context, begin time.Time) {
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	for {
		if b, err := rss(ctx, s.sys.steady); err == nil {
			s.mu.Lock()
			s.samples = append(s.samples, sample{at: time.Since(begin), rss: b})
			s.mu.Unlock()
		} else if ctx.Err() == nil {
			s.logf("daemon RSS: %v", err)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// drain waits until every confirmed job ran at least once, or
// SOAK_DRAIN_TIMEOUT passed, and returns how many times each number ran.
func (s *soak) drain(ctx context.Context, confirmed map[int64]bool) (map[int64]int, error) {
	deadline := time.Now().Add(s.cfg.drainTimeout)
	for {
		lines, err := s.sys.WorkerLines(ctx)
		if err != nil {
			return nil, err
		}
		counts := countRuns(lines)
		missing := 0
		for n := range confirmed {
			if counts[n] == 0 {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return counts, nil
		}
		s.logf("draining: %d jobs not run yet", missing)
		if !sleepUntil(ctx, time.Now().Add(pollEvery)) {
			return counts, ctx.Err()
		}
	}
}

// countRuns counts php/worker.php's "Processing N" lines by number.
func countRuns(lines []string) map[int64]int {
	counts := map[int64]int{}
	for _, line := range lines {
		if rest, ok := strings.CutPrefix(line, "Processing "); ok {
			if n, err := strconv.ParseInt(rest, 10, 64); err == nil {
				counts[n]++
			}
		}
	}
	return counts
}
