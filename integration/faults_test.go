//go:build integration

package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/fpmq/fpmq/integration/stack"
)

// poolOutage is how long TestPoolStopped keeps php-fpm stopped.
const poolOutage = 10 * time.Second

// The fault-injection tests break one part of a running system on purpose,
// with jobs queued and in flight, and then count every job.

// TestDaemonKilled kills the daemon with SIGKILL mid-run and starts a new one.
func TestDaemonKilled(t *testing.T) {
	s, numbers := runningJobs(t, 400)

	s.kill(t, s.daemon)
	// The log line is written when a job starts: what the killed daemon
	// had in flight is among the last lines written before the kill.
	atKill := len(s.workerLines(t))
	if q := s.queue(t, jobQueue); q.Ready+q.Unacked < 200 {
		t.Fatalf("only %d jobs queued or in flight at the kill; the test needs 200", q.Ready+q.Unacked)
	}

	s.daemon = s.startDaemon(t, nil)
	r := s.waitAll(t, numbers, 2*time.Minute)
	if r.deadLettered != 0 {
		t.Errorf("%d jobs dead-lettered", r.deadLettered)
	}
	// Duplicates may only be jobs in flight at the kill: at most the
	// daemon's prefetch (5), each first seen among the last lines before it.
	if len(r.duplicates) > 5 {
		t.Errorf("%d duplicates, want at most the 5 in flight", len(r.duplicates))
	}
	for _, n := range r.duplicates {
		if first := r.firstLine[n]; first <= atKill-5 || first > atKill {
			t.Errorf("job %d ran twice but first started at line %d, not among the last 5 before the kill (line %d)", n, first, atKill)
		}
	}
}

// TestBrokerRestarted restarts RabbitMQ mid-run, keeping its data; the
// daemon must reconnect by itself.
func TestBrokerRestarted(t *testing.T) {
	s, numbers := runningJobs(t, 300)

	ctx := context.Background()
	timeout := stack.StopTimeout
	if err := s.RabbitMQ.Stop(ctx, &timeout); err != nil {
		t.Fatalf("stop rabbitmq: %v", err)
	}
	if err := s.RabbitMQ.Start(ctx); err != nil {
		t.Fatalf("start rabbitmq: %v", err)
	}
	s.refreshEndpoint(t)

	r := s.waitAll(t, numbers, 3*time.Minute)
	if r.deadLettered != 0 {
		t.Errorf("%d jobs dead-lettered", r.deadLettered)
	}
	logs := containerLogs(t, s.daemon)
	if !strings.Contains(logs, "broker session restored") {
		t.Errorf("the daemon did not log its reconnection:\n%s", tail(logs, 20))
	}
	if n := strings.Count(logs, "broker session ended; reconnecting with backoff"); n != 1 {
		t.Errorf("the outage was logged %d times, want once", n)
	}
}

// TestPoolStopped stops php-fpm for 10 s mid-run. Its absence is not the
// jobs' fault: no attempt may be burned, nothing dead-lettered, and the
// daemon must wait rather than spin.
func TestPoolStopped(t *testing.T) {
	s, numbers := runningJobs(t, 300)

	ctx := context.Background()
	timeout := stack.StopTimeout
	if err := s.PHP.Stop(ctx, &timeout); err != nil {
		t.Fatalf("stop php-fpm: %v", err)
	}
	// The outage itself lasts 10 s, as the test sets out to show.
	time.Sleep(poolOutage)
	if err := s.PHP.Start(ctx); err != nil {
		t.Fatalf("start php-fpm: %v", err)
	}

	r := s.waitAll(t, numbers, 2*time.Minute)
	if r.deadLettered != 0 {
		t.Errorf("%d jobs dead-lettered while php-fpm was away", r.deadLettered)
	}
	logs := containerLogs(t, s.daemon)
	if n := strings.Count(logs, `"outcome":"retried"`); n != 0 {
		t.Errorf("%d attempts burned while php-fpm was away", n)
	}
	if !strings.Contains(logs, "pausing consumption") || !strings.Contains(logs, "resuming consumption") {
		t.Errorf("the daemon did not pause and resume:\n%s", tail(logs, 30))
	}
	// Without a pause every job would bounce off the missing socket
	// thousands of times in 10 s; with it, only those in hand come back.
	if n := strings.Count(logs, `"outcome":"requeued"`); n > 30 {
		t.Errorf("%d requeues during a 10 s outage: a hot loop", n)
	}
}

// runningJobs starts a stack whose jobs take 50 ms, publishes n of them and
// returns once 50 have started: the moment a fault test breaks something.
func runningJobs(t *testing.T, n int64) (*testStack, []int64) {
	t.Helper()
	s := newStack(t, stackOptions{workerSleep: 0.05})
	numbers := numberRange(1, n)
	s.publishJobs(t, numbers)
	eventually(t, time.Minute, "50 jobs processed", func() bool { return len(s.workerLines(t)) >= 50 })
	return s, numbers
}

// result counts what became of a set of jobs.
type result struct {
	sent, processed, deadLettered, lost int
	duplicates                          []int64
	firstLine                           map[int64]int
}

// waitAll waits until every number was processed (or the timeout passed),
// then counts, logs the tally and fails the test if any job was lost.
func (s *testStack) waitAll(t *testing.T, numbers []int64, timeout time.Duration) result {
	t.Helper()
	want := map[int64]bool{}
	for _, n := range numbers {
		want[n] = true
	}
	deadline := time.Now().Add(timeout)
	var counts map[int64]int
	for {
		counts = s.processed(t)
		missing := 0
		for n := range want {
			if counts[n] == 0 {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(pollInterval)
	}
	eventually(t, settleTimeout, "job queue drained", func() bool {
		q := s.queue(t, jobQueue)
		return q.Ready == 0 && q.Unacked == 0
	})

	r := result{sent: len(numbers), firstLine: map[int64]int{}, deadLettered: s.queue(t, deadQueue).Ready}
	for i, line := range s.workerLines(t) {
		if !strings.HasPrefix(line, "Processing ") {
			continue
		}
		if n := parseNumber(line); r.firstLine[n] == 0 && n != -1 {
			r.firstLine[n] = i + 1 // 1-based, so that 0 means unseen
		}
	}
	for _, n := range numbers {
		switch c := counts[n]; {
		case c == 0:
			r.lost++
		case c > 1:
			r.duplicates = append(r.duplicates, n)
			fallthrough
		default:
			r.processed++
		}
	}
	r.lost -= min(r.lost, r.deadLettered) // a dead job is accounted for, not lost
	t.Logf("sent %d / processed %d / duplicates %d / dead-lettered %d / lost %d",
		r.sent, r.processed, len(r.duplicates), r.deadLettered, r.lost)
	if r.lost != 0 {
		t.Errorf("%d jobs lost", r.lost)
	}
	return r
}

// kill sends SIGKILL to a container of the stack.
func (s *testStack) kill(t *testing.T, c *testcontainers.DockerContainer) {
	t.Helper()
	if _, err := s.Docker.ContainerKill(context.Background(), c.GetContainerID(), client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatalf("kill container: %v", err)
	}
}

func numberRange(from, to int64) []int64 {
	var ns []int64
	for n := from; n <= to; n++ {
		ns = append(ns, n)
	}
	return ns
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// TestDaemonDrainsOnSIGTERM stops the daemon with jobs running and waiting:
// the running ones finish and are acked, the waiting ones stay queued, and
// the daemon exits 0.
func TestDaemonDrainsOnSIGTERM(t *testing.T) {
	s := newStack(t, stackOptions{workerSleep: 2})
	numbers := numberRange(1, 12)
	s.publishJobs(t, numbers)
	eventually(t, settleTimeout, "5 jobs running", func() bool { return len(s.workerLines(t)) >= 5 })

	ctx := context.Background()
	timeout := stack.StopTimeout
	start := time.Now()
	if err := s.daemon.Stop(ctx, &timeout); err != nil { // SIGTERM, then SIGKILL after 30 s
		t.Fatalf("stop daemon: %v", err)
	}
	stopped := time.Since(start)
	state, err := s.daemon.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if state.ExitCode != 0 {
		t.Errorf("daemon exited %d after SIGTERM, want 0", state.ExitCode)
	}
	// The five running jobs sleep 2 s: the daemon waited for them, well
	// within its 30 s shutdown timeout, and did not start the others.
	if stopped >= 25*time.Second {
		t.Errorf("stopping took %s: the daemon did not drain by itself", stopped)
	}
	ran := len(s.workerLines(t))
	if ran != 5 {
		t.Errorf("%d jobs started before the daemon stopped, want the 5 in flight", ran)
	}
	q := s.queue(t, jobQueue)
	if q.Unacked != 0 || q.Ready != len(numbers)-ran {
		t.Errorf("after the drain the queue holds %+v, want %d ready and nothing unacked", q, len(numbers)-ran)
	}
	logs := containerLogs(t, s.daemon)
	if !strings.Contains(logs, "in-flight jobs done") || strings.Count(logs, `"outcome":"succeeded"`) != ran {
		t.Errorf("the daemon did not finish its in-flight jobs:\n%s", tail(logs, 15))
	}

	// A new daemon takes the rest; nothing ran twice.
	s.daemon = s.startDaemon(t, nil)
	r := s.waitAll(t, numbers, time.Minute)
	if len(r.duplicates) != 0 {
		t.Errorf("jobs %v ran twice across the restart", r.duplicates)
	}
}
