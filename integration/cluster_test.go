//go:build integration

package integration

import (
	"context"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fpmq/fpmq/integration/stack"
)

// Settings of TestClusterFailover.
const (
	clusterNodes = 3
	// clusterChildren is the pool's size and the daemon's concurrency, so
	// its prefetch too: the most jobs the daemon holds at once.
	clusterChildren = 10
	// partition is how long one node stays off the network.
	partition = 20 * time.Second
)

// TestClusterFailover runs 1000 one-second jobs on a three-node RabbitMQ
// cluster with quorum queues, as compose's cluster profile runs it: the
// daemon and the caller know all three nodes (AMQP_ADDRESSES). Mid-run the
// node both use is stopped, then, once it is back, the node the daemon
// moved to is cut off the network for 20 s. Every job must run at least
// once, and a job may run twice only if the daemon held it when a fault
// struck.
func TestClusterFailover(t *testing.T) {
	s := newStack(t, stackOptions{clusterNodes: clusterNodes, children: clusterChildren, workerSleep: 1, noDaemon: true})
	ctx := context.Background()
	daemonEnv := s.ClusterEnv(daemonUser)
	// Fewer quorum queues than the defaults make: one delay queue, two
	// retry queues. A failed job is not expected here.
	maps.Copy(daemonEnv, map[string]string{"DELAY_MAX": "1s", "MAX_ATTEMPTS": "3", "RECONNECT_MAX_DELAY": "2s"})
	s.daemon = s.startDaemon(t, daemonEnv)
	callerEnv := s.ClusterEnv(callerUser)
	callerEnv["CALLER_TIMEOUT"] = "60s"

	const total, before = 1000, 700
	numbers := numberRange(1, total)
	s.sendThroughCluster(t, callerEnv, numbers[:before])
	eventually(t, time.Minute, "50 jobs processed", func() bool { return len(s.workerLines(t)) >= 50 })

	// Fault 1: the first node, which both programs list first and the
	// daemon uses, stops. The caller then publishes the rest through
	// another node, and the daemon moves to one.
	var faults []window
	f := window{name: "rabbitmq-1 stopped", from: len(s.workerLines(t))}
	timeout := stack.StopTimeout
	if err := s.Nodes[0].Stop(ctx, &timeout); err != nil {
		t.Fatalf("stop rabbitmq-1: %v", err)
	}
	s.sendThroughCluster(t, callerEnv, numbers[before:])
	eventually(t, 2*time.Minute, "the daemon runs jobs again without rabbitmq-1", func() bool {
		return len(s.workerLines(t)) >= f.from+clusterChildren*3
	})
	f.to = len(s.workerLines(t))
	faults = append(faults, f)
	if logs := containerLogs(t, s.daemon); !strings.Contains(logs, "broker session restored") {
		t.Errorf("the daemon did not reconnect after rabbitmq-1 stopped:\n%s", tail(logs, 20))
	}

	if err := s.Nodes[0].Start(ctx); err != nil {
		t.Fatalf("start rabbitmq-1: %v", err)
	}
	eventually(t, stack.ClusterFormTimeout, "rabbitmq-1 back in the cluster", func() bool {
		running, err := s.RunningNodes(ctx, s.Nodes[2])
		return err == nil && len(running) == clusterNodes
	})
	if left := total - len(s.processed(t)); left < 100 {
		t.Logf("only %d jobs left when the partition starts", left)
	}

	// Fault 2: the node the daemon moved to leaves the network for 20 s.
	f = window{name: "rabbitmq-2 partitioned", from: len(s.workerLines(t))}
	if err := s.Disconnect(ctx, 2); err != nil {
		t.Fatal(err)
	}
	time.Sleep(partition)
	if err := s.Reconnect(ctx, 2); err != nil {
		t.Fatal(err)
	}
	back := len(s.workerLines(t))
	eventually(t, 2*time.Minute, "the daemon runs jobs again after the partition", func() bool {
		return len(s.workerLines(t)) >= back+clusterChildren*3 || len(s.processed(t)) == total
	})
	f.to = len(s.workerLines(t))
	faults = append(faults, f)
	r := s.waitAll(t, numbers, 5*time.Minute)

	if r.deadLettered != 0 {
		t.Errorf("%d jobs dead-lettered", r.deadLettered)
	}
	// A job runs twice only if the daemon held it, unacknowledged, when a
	// fault ended its session: at most its prefetch per session lost (one
	// per fault, unless a fault cost more than one), each first started
	// no earlier than prefetch lines before the fault and before the
	// daemon ran jobs normally again.
	nodes := nodeLines(containerLogs(t, s.daemon))
	t.Logf("daemon connections: %s", strings.Join(nodes, ", "))
	lost := max(len(faults), len(nodes)/2-1) // two connections a session
	if limit := clusterChildren * lost; len(r.duplicates) > limit {
		t.Errorf("%d duplicates, want at most %d (the daemon's prefetch per session lost)", len(r.duplicates), limit)
	}
	for _, n := range r.duplicates {
		first := r.firstLine[n]
		if !inAnyWindow(first, faults, clusterChildren) {
			t.Errorf("job %d ran twice but first started at line %d, in no fault's window %v", n, first, faults)
		}
	}
}

// window is the worker log lines of one fault: from the line count when it
// struck to the line count once jobs ran again after it.
type window struct {
	name     string
	from, to int
}

// inAnyWindow tells whether a job first started at line fits a fault: at
// most held lines before it struck, and before it was over.
func inAnyWindow(line int, faults []window, held int) bool {
	for _, f := range faults {
		if line > f.from-held && line <= f.to {
			return true
		}
	}
	return false
}

// sendThroughCluster publishes {"number":N} for each number with the
// caller image and env, and fails unless every job was confirmed.
func (s *testStack) sendThroughCluster(t *testing.T, env map[string]string, numbers []int64) {
	t.Helper()
	args := make([]string, len(numbers))
	for i, n := range numbers {
		args[i] = strconv.FormatInt(n, 10)
	}
	code, out := s.runCaller(t, env, args...)
	if sent := strings.Count(out, " [x] Message sent: "); code != 0 || sent != len(numbers) {
		t.Fatalf("caller exited %d with %d of %d jobs sent:\n%s", code, sent, len(numbers), tail(out, 10))
	}
}

// nodeLines returns the nodes the daemon said it connected to, in order.
func nodeLines(logs string) []string {
	var nodes []string
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "connected to RabbitMQ node") {
			if i := strings.Index(line, `"node":"`); i >= 0 {
				rest := line[i+len(`"node":"`):]
				nodes = append(nodes, rest[:strings.IndexByte(rest, '"')])
			}
		}
	}
	return nodes
}
