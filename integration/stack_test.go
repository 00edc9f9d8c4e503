//go:build integration

// Package integration tests the system from the outside, as its users meet
// it: the project's images, built from its Dockerfiles, run in containers on
// a private network, and the tests talk to them through RabbitMQ, the
// containers' files and their exit statuses.
package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

const (
	vhost = "fpmq"
	// The image defines these users (docker/rabbitmq/definitions.sh);
	// the test gives each its own password.
	rabbitUser  = "admin"
	callerUser  = "caller"
	daemonUser  = "daemon"
	workerLog   = "/var/log/workers/workers.log"
	socketDir   = "/run/php-fpm"
	jobQueue    = "commands"
	deadQueue   = "commands.dead"
	imagePrefix = "fpmq-test/"
	imageTag    = "integration"
)

type (
	containerConfig = container.Config
	hostConfig      = container.HostConfig
)

// image describes one of the project's images and how to build it.
type image struct {
	name       string // fpmq-test/<name>:integration
	dockerfile string
	target     string
	argName    string // the build argument naming the upstream image
	argDefault string
}

var images = map[string]image{
	"rabbitmq": {"rabbitmq", "docker/rabbitmq/Dockerfile", "", "RABBITMQ_IMAGE", "rabbitmq:3.13-management"},
	"php-fpm":  {"php-fpm", "docker/php-fpm/Dockerfile", "", "PHP_IMAGE", "php:8.2-fpm"},
	"daemon":   {"daemon", "docker/go/Dockerfile", "daemon", "GO_IMAGE", "golang:1.26-bookworm"},
	"caller":   {"caller", "docker/go/Dockerfile", "caller", "GO_IMAGE", "golang:1.26-bookworm"},
}

// buildOnce builds every image once per test binary, from the project's
// Dockerfiles, with the upstream images named in the environment (make
// integration-test loads them from .env).
var buildOnce = sync.OnceValue(func() error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		return fmt.Errorf("docker provider: %w", err)
	}
	defer provider.Close()
	root := repoRoot()
	for _, name := range []string{"rabbitmq", "php-fpm", "daemon", "caller"} {
		img := images[name]
		upstream := img.argDefault
		if v := os.Getenv(img.argName); v != "" {
			upstream = v
		}
		req := &testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
			Context:    root,
			Dockerfile: img.dockerfile,
			Repo:       imagePrefix + img.name,
			Tag:        imageTag,
			BuildArgs:  map[string]*string{img.argName: &upstream},
			KeepImage:  true,
			BuildOptionsModifier: func(o *client.ImageBuildOptions) {
				o.Target = img.target
			},
		}}
		if _, err := provider.BuildImage(ctx, req); err != nil {
			return fmt.Errorf("build %s from %s: %w", name, img.dockerfile, err)
		}
	}
	return nil
})

func imageRef(name string) string { return imagePrefix + images[name].name + ":" + imageTag }

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// stack is one running system: broker, pool and daemon on a private network.
type stack struct {
	net       *testcontainers.DockerNetwork
	rabbit    *testcontainers.DockerContainer
	php       *testcontainers.DockerContainer
	daemon    *testcontainers.DockerContainer
	password  string // the admin's
	passwords map[string]string
	amqpURL   string // the admin's, from the host, through the published port
	socket    string // the name of the volume holding the FastCGI socket
}

// stackOptions tunes a stack; zero values mean the defaults.
type stackOptions struct {
	children    int     // php-fpm pool size (5)
	workerSleep float64 // seconds each job sleeps (0)
	daemonEnv   map[string]string
	rabbitFiles []testcontainers.ContainerFile // copied into rabbitmq before it starts
	noDaemon    bool                           // start no daemon: s.daemon is nil
}

// newStack starts a stack and registers its cleanup with t.
func newStack(t *testing.T, opts stackOptions) *stack {
	t.Helper()
	if err := buildOnce(); err != nil {
		t.Fatal(err)
	}
	if opts.children == 0 {
		opts.children = 5
	}
	ctx := context.Background()
	s := &stack{password: randomHex(16)}
	s.passwords = map[string]string{rabbitUser: s.password, callerUser: randomHex(16), daemonUser: randomHex(16)}

	nw, err := network.New(ctx)
	testcontainers.CleanupNetwork(t, nw)
	if err != nil {
		t.Fatalf("create network: %v", err)
	}
	s.net = nw
	s.socket = "fpmq-test-socket-" + randomHex(6)
	logs := "fpmq-test-logs-" + randomHex(6)
	t.Cleanup(func() { removeVolumes(t, s.socket, logs) })

	s.rabbit, err = testcontainers.Run(ctx, imageRef("rabbitmq"),
		network.WithNetwork([]string{"rabbitmq"}, nw),
		testcontainers.WithConfigModifier(func(c *containerConfig) { c.Hostname = "rabbitmq" }),
		testcontainers.WithEnv(map[string]string{
			"RABBITMQ_ADMIN_PASSWORD":  s.passwords[rabbitUser],
			"RABBITMQ_CALLER_PASSWORD": s.passwords[callerUser],
			"RABBITMQ_DAEMON_PASSWORD": s.passwords[daemonUser],
		}),
		testcontainers.WithExposedPorts("5672/tcp"),
		testcontainers.WithFiles(opts.rabbitFiles...),
		testcontainers.WithWaitStrategy(
			wait.ForExec([]string{"rabbitmq-diagnostics", "-q", "check_port_connectivity"}).
				WithPollInterval(time.Second).WithStartupTimeout(2*time.Minute),
			wait.ForListeningPort("5672/tcp"),
		),
	)
	testcontainers.CleanupContainer(t, s.rabbit)
	if err != nil {
		t.Fatalf("start rabbitmq: %v", err)
	}
	endpoint, err := s.rabbit.PortEndpoint(ctx, "5672/tcp", "")
	if err != nil {
		t.Fatalf("rabbitmq endpoint: %v", err)
	}
	s.amqpURL = fmt.Sprintf("amqp://%s:%s@%s/%s", rabbitUser, s.password, endpoint, vhost)

	s.php, err = testcontainers.Run(ctx, imageRef("php-fpm"),
		network.WithNetwork([]string{"php-fpm"}, nw),
		testcontainers.WithEnv(map[string]string{
			"FPM_MAX_CHILDREN": strconv.Itoa(opts.children),
			"WORKER_SLEEP":     strconv.FormatFloat(opts.workerSleep, 'f', -1, 64),
		}),
		testcontainers.WithMounts(
			testcontainers.VolumeMount(s.socket, socketDir),
			testcontainers.VolumeMount(logs, "/var/log/workers"),
		),
		testcontainers.WithWaitStrategy(
			wait.ForExec([]string{"php", "/usr/local/lib/fpmq/healthcheck.php"}).
				WithPollInterval(500*time.Millisecond).WithStartupTimeout(time.Minute),
		),
	)
	testcontainers.CleanupContainer(t, s.php)
	if err != nil {
		t.Fatalf("start php-fpm: %v", err)
	}

	if !opts.noDaemon {
		s.daemon = s.startDaemon(t, opts.daemonEnv)
	}
	return s
}

// url is user's AMQP URL inside the stack's network. The caller and daemon
// users may only touch the "commands" queues; tests that use other queues
// connect as the admin.
func (s *stack) url(user string) string {
	return fmt.Sprintf("amqp://%s:%s@rabbitmq:5672/%s", user, s.passwords[user], vhost)
}

// startDaemon starts a daemon container on the stack and waits until it consumes.
func (s *stack) startDaemon(t *testing.T, env map[string]string) *testcontainers.DockerContainer {
	t.Helper()
	return s.startDaemonUntil(t, env, `"message":"consuming"`)
}

// startDaemonUntil starts a daemon container and waits until its log shows logLine.
func (s *stack) startDaemonUntil(t *testing.T, env map[string]string, logLine string) *testcontainers.DockerContainer {
	t.Helper()
	e := map[string]string{
		"AMQP_URL":    s.url(daemonUser),
		"CONCURRENCY": "5",
		"LOG_FORMAT":  "json",
		"RETRY_DELAY": "200ms",
	}
	for k, v := range env {
		e[k] = v
	}
	d, err := testcontainers.Run(context.Background(), imageRef("daemon"),
		network.WithNetwork(nil, s.net),
		testcontainers.WithEnv(e),
		testcontainers.WithExposedPorts("9090/tcp"),
		testcontainers.WithMounts(testcontainers.VolumeMount(s.socket, socketDir)),
		testcontainers.WithHostConfigModifier(func(h *hostConfig) {
			h.ReadonlyRootfs = true
			h.CapDrop = []string{"ALL"}
			h.SecurityOpt = []string{"no-new-privileges:true"}
		}),
		testcontainers.WithWaitStrategy(wait.ForLog(logLine).WithStartupTimeout(time.Minute)),
	)
	testcontainers.CleanupContainer(t, d)
	if err != nil {
		t.Fatalf("start daemon: %v", err)
	}
	return d
}

// runCaller runs the caller image once with args, and returns its
// exit status and output (stdout and stderr together).
func (s *stack) runCaller(t *testing.T, env map[string]string, args ...string) (int, string) {
	t.Helper()
	ctx := context.Background()
	e := map[string]string{"AMQP_URL": s.url(callerUser)}
	for k, v := range env {
		e[k] = v
	}
	opts := []testcontainers.ContainerCustomizer{
		network.WithNetwork(nil, s.net),
		testcontainers.WithEnv(e),
		testcontainers.WithCmd(args...),
		testcontainers.WithWaitStrategy(wait.ForExit().WithExitTimeout(2 * time.Minute)),
	}
	c, err := testcontainers.Run(ctx, imageRef("caller"), opts...)
	testcontainers.CleanupContainer(t, c)
	if err != nil {
		t.Fatalf("run caller %v: %v", args, err)
	}
	state, err := c.State(ctx)
	if err != nil {
		t.Fatalf("caller state: %v", err)
	}
	return state.ExitCode, containerLogs(t, c)
}

func containerLogs(t *testing.T, c *testcontainers.DockerContainer) string {
	t.Helper()
	r, err := c.Logs(context.Background())
	if err != nil {
		t.Fatalf("container logs: %v", err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read container logs: %v", err)
	}
	return string(b)
}

// workerLines returns the lines of the worker log.
func (s *stack) workerLines(t *testing.T) []string {
	t.Helper()
	r, err := s.php.CopyFileFromContainer(context.Background(), workerLog)
	if err != nil {
		// No job has run yet: the worker creates its log with the first.
		if msg := strings.ToLower(err.Error()); strings.Contains(msg, "no such") || strings.Contains(msg, "not found") || strings.Contains(msg, "could not find") {
			return nil
		}
		t.Fatalf("read worker log: %v", err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read worker log: %v", err)
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

// processed counts the "Processing N" lines of the worker log by number.
func (s *stack) processed(t *testing.T) map[int64]int {
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

// refreshEndpoint finds RabbitMQ's published port again after a restart.
func (s *stack) refreshEndpoint(t *testing.T) {
	t.Helper()
	endpoint, err := s.rabbit.PortEndpoint(context.Background(), "5672/tcp", "")
	if err != nil {
		t.Fatalf("rabbitmq endpoint: %v", err)
	}
	s.amqpURL = fmt.Sprintf("amqp://%s:%s@%s/%s", rabbitUser, s.password, endpoint, vhost)
}

// queueState is what RabbitMQ holds in a queue right now.
type queueState struct {
	exists         bool
	ready, unacked int
	consumers      int
}

// queue asks the broker itself (rabbitmqctl, not the sampled statistics) for
// the state of the named queue.
func (s *stack) queue(t *testing.T, name string) queueState {
	t.Helper()
	code, out, err := s.rabbit.Exec(context.Background(), []string{
		"rabbitmqctl", "-q", "list_queues", "-p", vhost, "--no-table-headers",
		"name", "messages_ready", "messages_unacknowledged", "consumers",
	}, tcexec.Multiplexed())
	if err != nil {
		t.Fatalf("list queues: %v", err)
	}
	text := readAll(t, out)
	if code != 0 {
		t.Fatalf("rabbitmqctl list_queues exited %d: %s", code, text)
	}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 4 && f[0] == name {
			return queueState{true, atoi(t, f[1]), atoi(t, f[2]), atoi(t, f[3])}
		}
	}
	return queueState{}
}

// queueTypes returns the type of every queue, by name.
func (s *stack) queueTypes(t *testing.T) map[string]string {
	t.Helper()
	code, out, err := s.rabbit.Exec(context.Background(), []string{
		"rabbitmqctl", "-q", "list_queues", "-p", vhost, "--no-table-headers", "name", "type",
	}, tcexec.Multiplexed())
	if err != nil || code != 0 {
		t.Fatalf("list queue types: exit %d, %v", code, err)
	}
	types := map[string]string{}
	for _, line := range strings.Split(readAll(t, out), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			types[f[0]] = f[1]
		}
	}
	return types
}

// adminChannel opens a channel as the admin, from the host; its connection
// closes when the test ends.
func (s *stack) adminChannel(t *testing.T) *amqp.Channel {
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
func (s *stack) publish(t *testing.T, bodies ...[]byte) {
	t.Helper()
	s.publishBodies(t, bodies, func(i int) string { return fmt.Sprintf("test-%s-%d", t.Name(), i) })
}

// publishJobs publishes {"number":N} for each number, as the caller does.
func (s *stack) publishJobs(t *testing.T, numbers []int64) {
	t.Helper()
	bodies := make([][]byte, len(numbers))
	for i, n := range numbers {
		bodies[i] = []byte(fmt.Sprintf(`{"number":%d}`, n))
	}
	s.publishBodies(t, bodies, func(i int) string { return fmt.Sprintf("job-%d", numbers[i]) })
}

// publishBodies publishes each body to the job queue, persistent and
// mandatory, with pipelined confirms; id gives each its message id.
func (s *stack) publishBodies(t *testing.T, bodies [][]byte, id func(int) string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ch := s.adminChannel(t)
	if err := ch.Confirm(false); err != nil { // false: wait for confirm.select-ok
		t.Fatalf("enable confirms: %v", err)
	}
	pending := make([]*amqp.DeferredConfirmation, len(bodies))
	for i, body := range bodies {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", jobQueue,
			true,  // mandatory
			false, // immediate
			amqp.Publishing{
				ContentType:  "application/json",
				DeliveryMode: amqp.Persistent,
				MessageId:    id(i),
				Timestamp:    time.Now(),
				Body:         body,
			})
		if err != nil {
			t.Fatalf("publish %s: %v", id(i), err)
		}
		pending[i] = dc
	}
	for i, dc := range pending {
		if ok, err := dc.WaitContext(ctx); err != nil || !ok {
			t.Fatalf("%s not confirmed: ok=%v err=%v", id(i), ok, err)
		}
	}
}

// deadLetters takes every message out of the dead-letter queue.
func (s *stack) deadLetters(t *testing.T) []amqp.Delivery {
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
		time.Sleep(250 * time.Millisecond)
	}
}

func removeVolumes(t *testing.T, names ...string) {
	cli, err := testcontainers.NewDockerClientWithOpts(context.Background())
	if err != nil {
		t.Logf("docker client: %v", err)
		return
	}
	defer cli.Close()
	for _, name := range names {
		if _, err := cli.VolumeRemove(context.Background(), name, client.VolumeRemoveOptions{Force: true}); err != nil {
			t.Logf("remove volume %s: %v", name, err)
		}
	}
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		t.Fatalf("read: %v", err)
	}
	return buf.String()
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
