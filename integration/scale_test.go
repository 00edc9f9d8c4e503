//go:build integration

package integration

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"

	"github.com/fpmq/fpmq/integration/stack"
)

// The scale-out deployment of docker/compose/tcp.yaml: several daemons on
// one queue, several php-fpm containers behind them over TCP.
const (
	scaleDaemons     = 3
	scalePools       = 2
	scaleConcurrency = 4 // per daemon: 3 × 4 jobs at once ...
	scaleChildren    = 6 // ... on 2 × 6 children
	scaleJobs        = 1000
)

// scaleStack is a stack whose pools listen on TCP, each in a container of
// its own with its own worker log.
type scaleStack struct {
	*testStack
	net     stack.FastCGINetwork
	pools   []*testcontainers.DockerContainer
	daemons []*testcontainers.DockerContainer
}

// TestScale runs 3 daemons and 2 php-fpm pools over TCP, as `docker compose
// -f compose.yaml -f docker/compose/tcp.yaml up --scale daemon=3 --scale
// php-fpm=2` does: 1000 jobs run exactly once and both pools share them;
// only the daemons' network may use the pools; and with one daemon and one
// pool killed mid-run, nothing is lost.
func TestScale(t *testing.T) {
	sc := newScaleStack(t)

	t.Run("every job once", func(t *testing.T) {
		numbers := numberRange(1, scaleJobs)
		start := time.Now()
		sc.publishJobs(t, numbers)
		r := sc.waitAll(t, numbers, 2*time.Minute)
		t.Logf("sent %d / processed %d / duplicates %d / dead-lettered %d / lost %d, in %s",
			r.sent, r.processed, len(r.duplicates), r.deadLettered, r.lost, time.Since(start).Round(time.Millisecond))
		if len(r.duplicates) != 0 {
			t.Errorf("jobs ran more than once with no fault: %v", r.duplicates[:min(len(r.duplicates), 20)])
		}
		if r.deadLettered != 0 {
			t.Errorf("%d jobs dead-lettered with no fault", r.deadLettered)
		}
		// Each daemon dials the pools' name per job, and Docker's DNS
		// answers with the replicas' addresses in turns: both pools work.
		perDaemon := sc.succeededPerDaemon(t)
		t.Logf("jobs per pool %v, per daemon %v", r.perPool, perDaemon)
		for i, n := range r.perPool {
			if n < scaleJobs/5 {
				t.Errorf("pool %d ran %d of %d jobs: the daemons do not spread jobs over the pools", i+1, n, scaleJobs)
			}
		}
		for i, n := range perDaemon {
			if n < scaleJobs/10 {
				t.Errorf("daemon %d ran %d of %d jobs", i+1, n, scaleJobs)
			}
		}
	})

	t.Run("only the daemons' network", func(t *testing.T) { sc.checkAllowedClients(t) })

	t.Run("no TCP without allowed clients", func(t *testing.T) {
		for _, tc := range []struct{ allowed, want string }{
			{"", "FPM_ALLOWED_CLIENTS is empty"},
			{"10.0.0.0/8", "the prefix length must be 20 to 32"},
			{"daemon", "'daemon' is not an IPv4 or IPv6 address"},
		} {
			c := sc.run(t, sc.PHPCommand, stack.Run{
				Env:  map[string]string{"FPM_LISTEN": "9000", "FPM_ALLOWED_CLIENTS": tc.allowed},
				Args: []string{"php-fpm", "-F", "-y", "/etc/fpmq/php-fpm.conf"},
			})
			if code, logs := exitCode(t, c), containerLogs(t, c); code != 2 || !strings.Contains(logs, tc.want) {
				t.Errorf("php-fpm on TCP with FPM_ALLOWED_CLIENTS=%q exited %d, want 2 saying %q:\n%s", tc.allowed, code, tc.want, logs)
			}
		}
	})

	t.Run("daemon and pool killed", func(t *testing.T) {
		numbers := numberRange(scaleJobs+1, 2*scaleJobs)
		deadBefore := sc.queue(t, deadQueue).Ready
		sc.publishJobs(t, numbers)
		eventually(t, time.Minute, "100 jobs processed", func() bool {
			return len(sc.counts(t, numbers)) >= 100
		})

		sc.kill(t, sc.daemons[0])
		sc.kill(t, sc.pools[0])
		// The lines written so far: jobs in flight at the kills are
		// among them, and only they may run twice.
		atKill := sc.counts(t, numbers)
		if left := len(numbers) - len(atKill); left < 300 {
			t.Fatalf("only %d jobs left at the kill; the test needs 300", left)
		}
		t.Logf("at the kills: %d of %d jobs started", len(atKill), len(numbers))

		r := sc.waitAll(t, numbers, 2*time.Minute)
		r.deadLettered -= deadBefore
		t.Logf("sent %d / processed %d / duplicates %d / dead-lettered %d / lost %d",
			r.sent, r.processed, len(r.duplicates), r.deadLettered, r.lost)
		if r.deadLettered != 0 {
			t.Errorf("%d jobs dead-lettered", r.deadLettered)
		}
		// In flight at the kills: at most the killed daemon's prefetch and
		// the killed pool's children.
		if limit := scaleConcurrency + scaleChildren; len(r.duplicates) > limit {
			t.Errorf("%d duplicates, want at most the %d in flight at the kills", len(r.duplicates), limit)
		}
		for _, n := range r.duplicates {
			if atKill[n] == 0 {
				t.Errorf("job %d ran twice but had not started at the kills", n)
			}
		}
	})
}

// newScaleStack starts RabbitMQ, the FastCGI network, the pools and the
// daemons.
func newScaleStack(t *testing.T) *scaleStack {
	t.Helper()
	s := newStack(t, stackOptions{noDaemon: true, noPHP: true, children: scaleChildren, workerSleep: 0.05})
	ctx := context.Background()
	n, err := s.StartFastCGINetwork(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sc := &scaleStack{testStack: s, net: n}
	for range scalePools {
		sc.pools = append(sc.pools, s.run(t, func(ctx context.Context, _ stack.Run) (*testcontainers.DockerContainer, error) {
			return s.TCPPool(ctx)
		}, stack.Run{}))
	}
	for range scaleDaemons {
		sc.daemons = append(sc.daemons, s.run(t, s.TCPDaemon, stack.Run{Env: map[string]string{
			"CONCURRENCY":          strconv.Itoa(scaleConcurrency),
			"RETRY_INITIAL_DELAY":  retryDelay,
			"QUEUE_STATS_INTERVAL": "1s",
			// A connection to a pool killed mid-job fails at once; this
			// bounds anything slower.
			"REQUEST_TIMEOUT": "15s",
		}}))
	}
	return sc
}

// checkAllowedClients probes the pools from three places: a container the
// FastCGI network gives an address (as a daemon) gets "pong"; one on that
// network at an address outside the client range, and one on the stack's
// other network (as the caller, RabbitMQ), reach the port but php-fpm
// drops them, and says so in its log.
func (sc *scaleStack) checkAllowedClients(t *testing.T) {
	ctx := context.Background()
	pool := sc.pools[len(sc.pools)-1]
	fastcgiAddr, err := sc.Address(ctx, pool, sc.net.Name)
	if err != nil {
		t.Fatal(err)
	}
	otherAddr, err := sc.Address(ctx, pool, sc.Network)
	if err != nil {
		t.Fatal(err)
	}
	if !sc.net.ClientRange.Contains(fastcgiAddr) {
		t.Errorf("the pool's address %s on the FastCGI network is outside its client range %s", fastcgiAddr, sc.net.ClientRange)
	}

	probe := func(netName string, ip netip.Addr, target string) (int, string) {
		t.Helper()
		code, out, err := sc.Probe(ctx, netName, ip, target)
		if err != nil {
			t.Fatal(err)
		}
		return code, out
	}
	for _, port := range []int{stack.PoolPort, stack.ReportsPoolPort} {
		target := fmt.Sprintf("tcp://%s:%d", fastcgiAddr, port)
		if code, out := probe(sc.net.Name, netip.Addr{}, target); code != 0 {
			t.Errorf("a client in %s was refused by %s (exit %d): %s", sc.net.ClientRange, target, code, out)
		}
		if code, out := probe(sc.net.Name, sc.net.Outside(), target); code == 0 {
			t.Errorf("a client at %s, outside %s, got an answer from %s: %s", sc.net.Outside(), sc.net.ClientRange, target, out)
		}
		other := fmt.Sprintf("tcp://%s:%d", otherAddr, port)
		if code, out := probe(sc.Network, netip.Addr{}, other); code == 0 {
			t.Errorf("a client on the stack's other network got an answer from %s: %s", other, out)
		}
	}

	// php-fpm itself dropped them: listen.allowed_clients, not a network
	// that happened not to route. Four refusals: two clients, two pools.
	var dropped []string
	eventually(t, settleTimeout, "php-fpm logs the refused clients", func() bool {
		var err error
		dropped, err = stack.Disallowed(ctx, pool)
		if err != nil {
			t.Fatal(err)
		}
		return len(dropped) >= 4
	})
	if outside := sc.net.Outside().String(); !slices.Contains(dropped, outside) {
		t.Errorf("php-fpm dropped %v, not the client at %s", dropped, outside)
	}
	for _, a := range dropped {
		if addr, err := netip.ParseAddr(a); err == nil && sc.net.ClientRange.Contains(addr.Unmap()) {
			t.Errorf("php-fpm dropped %s, inside the client range %s", a, sc.net.ClientRange)
		}
	}
	t.Logf("php-fpm dropped %v", dropped)
}

// lines returns each pool's worker log, killed pools' included.
func (sc *scaleStack) lines(t *testing.T) [][]string {
	t.Helper()
	all := make([][]string, len(sc.pools))
	for i, p := range sc.pools {
		lines, err := stack.FileLines(context.Background(), p, stack.WorkerLog)
		if err != nil {
			t.Fatal(err)
		}
		all[i] = lines
	}
	return all
}

// counts returns how often each of numbers was processed, over every
// pool; numbers never processed are not in it.
func (sc *scaleStack) counts(t *testing.T, numbers []int64) map[int64]int {
	t.Helper()
	counts, _ := sc.countsPerPool(t, numbers)
	return counts
}

// countsPerPool is counts, and how many of those runs each pool made.
func (sc *scaleStack) countsPerPool(t *testing.T, numbers []int64) (map[int64]int, []int) {
	t.Helper()
	want := map[int64]bool{}
	for _, n := range numbers {
		want[n] = true
	}
	counts := map[int64]int{}
	perPool := make([]int, len(sc.pools))
	for i, lines := range sc.lines(t) {
		for _, line := range lines {
			if n := parseNumber(line); strings.HasPrefix(line, "Processing ") && want[n] {
				counts[n]++
				perPool[i]++
			}
		}
	}
	return counts, perPool
}

// scaleResult is what became of a set of jobs.
type scaleResult struct {
	sent, processed, deadLettered, lost int
	duplicates                          []int64
	perPool                             []int // runs per pool
}

// waitAll waits until every number was processed and every queue of the
// route is empty (or the timeout passed), then counts; a lost job fails the
// test. deadLettered is the dead-letter queue's whole length.
func (sc *scaleStack) waitAll(t *testing.T, numbers []int64, timeout time.Duration) scaleResult {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for len(sc.counts(t, numbers)) < len(numbers) && time.Now().Before(deadline) {
		time.Sleep(pollInterval)
	}
	// Retried jobs wait in the retry queues: the route is done once every
	// queue but the dead-letter one is empty and nothing is unacked.
	eventually(t, settleTimeout, "the route's queues drained", func() bool {
		queues, err := sc.Queues(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for name, q := range queues {
			if strings.HasPrefix(name, jobQueue) && name != deadQueue && q.Ready+q.Unacked != 0 {
				return false
			}
		}
		return true
	})

	counts, perPool := sc.countsPerPool(t, numbers)
	r := scaleResult{sent: len(numbers), perPool: perPool, deadLettered: sc.queue(t, deadQueue).Ready}
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
	if r.lost != 0 {
		t.Errorf("%d jobs lost", r.lost)
	}
	return r
}

// succeededPerDaemon counts the jobs each daemon logged as succeeded.
func (sc *scaleStack) succeededPerDaemon(t *testing.T) []int {
	t.Helper()
	var n []int
	for _, d := range sc.daemons {
		n = append(n, strings.Count(containerLogs(t, d), `"outcome":"succeeded"`))
	}
	return n
}
