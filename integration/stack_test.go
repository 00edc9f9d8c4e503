//go:build integration

// Package integration tests the system from the outside, as its users meet
// it: the project's images, built from its Dockerfiles, run in containers on
// a private network (see package stack), and the tests talk to them through
// RabbitMQ, the containers' files and their exit statuses.
package integration

import (
	"context"
	"fmt"
	"maps"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/fpmq/fpmq/integration/stack"
)

const (
	vhost      = stack.VHost
	rabbitUser = stack.AdminUser
	callerUser = stack.CallerUser
	daemonUser = stack.DaemonUser
	// operatorUser runs daemon dead (compose's ops service).
	operatorUser = stack.OperatorUser
	jobQueue     = stack.JobQueue
	deadQueue    = stack.DeadQueue
	reportsQueue = stack.ReportsQueue
	reportsDead  = stack.ReportsDeadQueue
)

// How long the tests wait; the stack has its own timeouts for starting.
const (
	// settleTimeout is the wait for a handful of jobs to be processed,
	// dead-lettered or acked.
	settleTimeout = 30 * time.Second
	// pollInterval is how often a condition is checked while waiting.
	pollInterval = 250 * time.Millisecond
	// retryDelay is the test daemons' RETRY_INITIAL_DELAY: a failed job is
	// retried after 200 ms rather than the default 1 s, so tests are quick.
	retryDelay = "200ms"
)

// buildImages builds every image once per test binary, from the project's
// Dockerfiles, with the upstream images named in the environment (make
// integration-test loads them from .env).
var buildImages = sync.OnceValues(func() (stack.Images, error) {
	root, err := stack.RepoRoot()
	if err != nil {
		return stack.Images{}, err
	}
	return stack.Build(context.Background(), root, "fpmq-test/", testTag(), os.Getenv)
})

// testTag is the tag of the images the tests build: FPMQ_TEST_TAG, so that
// runs from several checkouts on one engine do not replace each other's
// images, or "integration".
func testTag() string {
	if tag := os.Getenv("FPMQ_TEST_TAG"); tag != "" {
		return tag
	}
	return "integration"
}

// logVersions logs the broker's and PHP's versions once per test binary, so
// that a run's output says which generations it tested (make
// integration-test: RabbitMQ 4; make integration-test-rabbitmq3: 3).
var logVersions sync.Once

// versions returns the RabbitMQ and PHP versions st runs, as
// "RabbitMQ 4.0.5, PHP 8.4.27"; a part it cannot read says why, and PHP
// says "none started" on a stack without php-fpm.
func versions(ctx context.Context, st *stack.Stack) string {
	read := func(c *testcontainers.DockerContainer, cmd ...string) string {
		code, out, err := stack.Exec(ctx, c, cmd...)
		switch {
		case err != nil:
			return fmt.Sprintf("unknown (%v)", err)
		case code != 0:
			return fmt.Sprintf("unknown (%s exited %d: %s)", cmd[0], code, strings.TrimSpace(out))
		}
		return strings.TrimSpace(out)
	}
	php := "none started" // noPHP
	if st.PHP != nil {
		php = read(st.PHP, "php", "-r", "echo PHP_VERSION;")
	}
	return "RabbitMQ " + read(st.RabbitMQ, "rabbitmq-diagnostics", "-q", "server_version") + ", PHP " + php
}

// repoRoot returns the repository's root, or fails the test.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := stack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// testStack is a running stack with the test's view of it.
type testStack struct {
	*stack.Stack
	daemon  *testcontainers.DockerContainer // nil with noDaemon
	amqpURL string                          // the admin's, from the host, through the published port
}

// stackOptions tunes a stack; zero values mean the defaults.
type stackOptions struct {
	children    int     // php-fpm pool size (5)
	workerSleep float64 // seconds each job sleeps (0)
	// reportsChildren is the reports pool's size (2), reportSleep the
	// seconds each job of php/report.php sleeps (0).
	reportsChildren int
	reportSleep     float64
	daemonEnv       map[string]string
	rabbitFiles     []testcontainers.ContainerFile // copied into rabbitmq before it starts
	phpBinds        []string                       // bind mounts of php-fpm, "HOST:CONTAINER[:ro]"
	phpEnv          map[string]string              // added to php-fpm's environment
	noDaemon        bool                           // start no daemon: s.daemon is nil
	clusterNodes    int                            // above 0: a RabbitMQ cluster of that many nodes (stack.Options.ClusterNodes)
	noPHP           bool                           // start no php-fpm on the socket (stack.Options.NoPHP)
	rabbitEnv       map[string]string              // added to RabbitMQ's environment (stack.Options.RabbitMQEnv)
	images          *stack.Images                  // nil: buildImages()
}

// newStack starts a stack and registers its removal with t.
func newStack(t *testing.T, opts stackOptions) *testStack {
	t.Helper()
	images, err := buildImages()
	if err != nil {
		t.Fatal(err)
	}
	if opts.images != nil {
		images = *opts.images
	}
	ctx := context.Background()
	st, err := stack.Start(ctx, stack.Options{
		Images:          images,
		Name:            "fpmq-test-",
		Children:        opts.children,
		WorkerSleep:     opts.workerSleep,
		ReportsChildren: opts.reportsChildren,
		ReportSleep:     opts.reportSleep,
		RabbitMQFiles:   opts.rabbitFiles,
		PHPBinds:        opts.phpBinds,
		ClusterNodes:    opts.clusterNodes,
		NoPHP:           opts.noPHP,
		PHPEnv:          opts.phpEnv,
		RabbitMQEnv:     opts.rabbitEnv,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	logVersions.Do(func() { t.Logf("the stack runs %s", versions(ctx, st)) })
	s := &testStack{Stack: st}
	s.refreshEndpoint(t)
	if !opts.noDaemon {
		s.daemon = s.startDaemon(t, opts.daemonEnv)
	}
	return s
}

// startDaemon starts a daemon container on the stack and waits until it is
// ready (stack.DaemonReady). The daemon is removed when the test (or
// subtest) ends.
func (s *testStack) startDaemon(t *testing.T, env map[string]string) *testcontainers.DockerContainer {
	t.Helper()
	return s.startDaemonWaiting(t, env, stack.DaemonReady())
}

// startReportsDaemon starts a daemon of the reports route (stack.ReportsDaemon)
// with env and waits until it is ready.
func (s *testStack) startReportsDaemon(t *testing.T, env map[string]string) *testcontainers.DockerContainer {
	t.Helper()
	e := map[string]string{"RETRY_INITIAL_DELAY": retryDelay, "QUEUE_STATS_INTERVAL": "1s"}
	maps.Copy(e, env)
	return s.run(t, s.ReportsDaemon, stack.Run{Env: e, Wait: stack.DaemonReady()})
}

// startDaemonUntil starts a daemon container and waits until its log shows
// logLine, for a daemon that is not to become ready. The daemon is removed
// when the test (or subtest) ends.
func (s *testStack) startDaemonUntil(t *testing.T, env map[string]string, logLine string) *testcontainers.DockerContainer {
	t.Helper()
	return s.startDaemonWaiting(t, env, wait.ForLog(logLine).WithStartupTimeout(stack.DaemonStartTimeout))
}

// startDaemonWaiting starts a daemon container with the tests' settings and
// env on top, and waits as until says.
func (s *testStack) startDaemonWaiting(t *testing.T, env map[string]string, until wait.Strategy) *testcontainers.DockerContainer {
	t.Helper()
	e := map[string]string{"RETRY_INITIAL_DELAY": retryDelay, "QUEUE_STATS_INTERVAL": "1s"}
	maps.Copy(e, env)
	return s.run(t, s.Daemon, stack.Run{Env: e, Wait: until})
}

// run runs a daemon or a caller container with start and removes it when
// the test (or subtest) ends.
func (s *testStack) run(t *testing.T, start func(context.Context, stack.Run) (*testcontainers.DockerContainer, error), r stack.Run) *testcontainers.DockerContainer {
	t.Helper()
	c, err := start(context.Background(), r)
	if c != nil {
		t.Cleanup(func() {
			if err := s.Remove(context.Background(), c); err != nil {
				t.Error(err)
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// runCaller runs the caller image once with args, and returns its
// exit status and output (stdout and stderr together).
func (s *testStack) runCaller(t *testing.T, env map[string]string, args ...string) (int, string) {
	t.Helper()
	c := s.run(t, s.Caller, stack.Run{Env: env, Args: args})
	return exitCode(t, c), containerLogs(t, c)
}

func containerLogs(t *testing.T, c *testcontainers.DockerContainer) string {
	t.Helper()
	logs, err := stack.Logs(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return logs
}

func exitCode(t *testing.T, c *testcontainers.DockerContainer) int {
	t.Helper()
	code, err := stack.ExitCode(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// execIn runs cmd in c and returns its exit status and output.
func execIn(t *testing.T, c *testcontainers.DockerContainer, cmd ...string) (int, string) {
	t.Helper()
	code, out, err := stack.Exec(context.Background(), c, cmd...)
	if err != nil {
		t.Fatal(err)
	}
	return code, out
}

// workerLines returns the lines of the worker log.
func (s *testStack) workerLines(t *testing.T) []string {
	t.Helper()
	lines, err := s.WorkerLines(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

// processed counts the "Processing N" lines of the worker log by number.
func (s *testStack) processed(t *testing.T) map[int64]int {
	t.Helper()
	counts := map[int64]int{}
	for _, line := range s.workerLines(t) {
		if strings.HasPrefix(line, "Processing ") {
			counts[parseNumber(line)]++
		}
	}
	return counts
}

// parseNumber returns N of a "Processing N" line, or -1.
func parseNumber(line string) int64 {
	n, err := strconv.ParseInt(strings.TrimPrefix(line, "Processing "), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// refreshEndpoint finds RabbitMQ's published port again, as after a restart.
func (s *testStack) refreshEndpoint(t *testing.T) {
	t.Helper()
	endpoint, err := s.Endpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.amqpURL = s.URLAt(rabbitUser, endpoint)
}

// queue asks the broker itself (rabbitmqctl, not the sampled statistics) for
// the state of the named queue.
func (s *testStack) queue(t *testing.T, name string) stack.Queue {
	t.Helper()
	q, err := s.Queue(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// adminChannel opens a channel as the admin, from the host; its connection
// closes when the test ends.
func (s *testStack) adminChannel(t *testing.T) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(s.amqpURL)
	if err != nil {
		t.Fatalf("connect to rabbitmq: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("open channel: %v", err)
	}
	return ch
}

// publish sends raw bodies to the job queue from the host, with confirms.
func (s *testStack) publish(t *testing.T, bodies ...[]byte) {
	t.Helper()
	s.publishBodies(t, bodies, func(i int) string { return fmt.Sprintf("test-%s-%d", t.Name(), i) })
}

// publishJobs publishes {"number":N} for each number, as the caller does.
func (s *testStack) publishJobs(t *testing.T, numbers []int64) {
	t.Helper()
	bodies := make([][]byte, len(numbers))
	for i, n := range numbers {
		bodies[i] = []byte(fmt.Sprintf(`{"number":%d}`, n))
	}
	s.publishBodies(t, bodies, func(i int) string { return fmt.Sprintf("job-%d", numbers[i]) })
}

// publishTimeout bounds publishing a test's messages, confirms included.
const publishTimeout = time.Minute

// publishBodies publishes each body to the job queue as the caller does;
// id gives each its message id.
func (s *testStack) publishBodies(t *testing.T, bodies [][]byte, id func(int) string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	err := stack.PublishConfirmed(ctx, s.adminChannel(t), jobQueue, len(bodies), func(i int) amqp.Publishing {
		return stack.Job(id(i), bodies[i])
	})
	if err != nil {
		t.Fatal(err)
	}
}

// deadLetters takes every message out of the dead-letter queue.
func (s *testStack) deadLetters(t *testing.T) []amqp.Delivery {
	t.Helper()
	ch := s.adminChannel(t)
	var got []amqp.Delivery
	for {
		d, ok, err := ch.Get(deadQueue, true) // true: auto-ack
		if err != nil {
			t.Fatalf("get from %s: %v", deadQueue, err)
		}
		if !ok {
			return got
		}
		got = append(got, d)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(pollInterval)
	}
}
