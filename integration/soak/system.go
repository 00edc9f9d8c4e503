package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"strconv"
	"strings"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/fpmq/fpmq/integration/stack"
)

// The system the soak runs.
const (
	nodes = 3 // RabbitMQ nodes
	// children is php-fpm's pm.max_children; each daemon runs half of it.
	children = 10
	// workerSleep is how long each job sleeps in php/worker.php, in
	// seconds: 100,000 jobs in 10 minutes is 167 a second, which 10
	// children sleeping 20 ms can run three times over.
	workerSleep = 0.02
)

// system is the running stack and its two daemons.
type system struct {
	*stack.Stack
	// restarted is the daemon the faults restart; steady runs throughout,
	// and its RSS is sampled.
	restarted, steady *testcontainers.DockerContainer
}

// start starts the cluster, php-fpm and both daemons from the images make
// images built; on failure it removes what it started.
func start(ctx context.Context, logf func(string, ...any)) (sys *system, err error) {
	// The images are built from this repository, as the integration tests
	// build theirs, and run by ID, so that another build of the same tags
	// during the run cannot change what runs.
	root, err := stack.RepoRoot()
	if err != nil {
		return nil, err
	}
	logf("building the images fpmq-soak/*:soak from %s", root)
	refs, err := stack.Build(ctx, root, "fpmq-soak/", "soak", os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("%w (run make images first: it builds the upstream stand-ins)", err)
	}
	ids, err := stack.Pin(ctx, refs)
	if err != nil {
		return nil, err
	}
	st, err := stack.Start(ctx, stack.Options{
		Images:       ids,
		Name:         "fpmq-soak-",
		Children:     children,
		WorkerSleep:  workerSleep,
		ClusterNodes: nodes,
	})
	if err != nil {
		return nil, err
	}
	sys = &system{Stack: st}
	defer func() {
		if err != nil {
			err = errors.Join(err, st.Close(context.WithoutCancel(ctx)))
			sys = nil
		}
	}()
	logf("cluster formed: %s", strings.Join(nodeNames(), ", "))
	if sys.restarted, err = sys.daemon(ctx); err != nil {
		return nil, err
	}
	if sys.steady, err = sys.daemon(ctx); err != nil {
		return nil, err
	}
	return sys, nil
}

// daemon starts one daemon on the cluster's quorum queues, with half the
// pool, and waits until it consumes.
func (s *system) daemon(ctx context.Context) (*testcontainers.DockerContainer, error) {
	env := s.ClusterEnv(stack.DaemonUser)
	maps.Copy(env, map[string]string{
		"CONCURRENCY":         strconv.Itoa(children / 2),
		"DELAY_MAX":           "1s",
		"RECONNECT_MAX_DELAY": "5s",
	})
	return s.Daemon(ctx, stack.Run{Env: env, Wait: wait.ForLog(stack.ConsumingLog).WithStartupTimeout(stack.DaemonStartTimeout)})
}

func nodeNames() []string {
	var names []string
	for i := range nodes {
		names = append(names, stack.NodeHost(i+1))
	}
	return names
}

// rss returns the resident set of container c's main process in bytes,
// VmRSS in the host's /proc/PID/status: the daemon runs as PID 1 of its
// container and is alone there.
func rss(ctx context.Context, c *testcontainers.DockerContainer) (uint64, error) {
	info, err := c.Inspect(ctx)
	if err != nil {
		return 0, fmt.Errorf("inspect: %w", err)
	}
	if info.State == nil || info.State.Pid == 0 {
		return 0, errors.New("the container is not running")
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", info.State.Pid))
	if err != nil {
		return 0, fmt.Errorf("%w (the soak reads the daemon's /proc: run it as root)", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			num, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
			kb, err := strconv.ParseUint(num, 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.Join(sc.Err(), errors.New("no VmRSS line"))
}
