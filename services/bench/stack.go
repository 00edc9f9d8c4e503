package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	dockernet "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// The images the bench runs, as make images builds them. It never pulls.
const (
	imageRabbitMQ = "fpmq/rabbitmq:dev"
	imagePHPFPM   = "fpmq/php-fpm:dev"
	imageDaemon   = "fpmq/daemon:dev"
	imageCaller   = "fpmq/caller:dev"
)

const (
	// namePrefix starts the name of everything the bench creates in Docker,
	// so that nobody mistakes it for theirs.
	namePrefix = "fpmq-bench-"
	jobQueue   = "commands"
	// vhost and the users are those the rabbitmq image defines at start
	// (docker/rabbitmq/definitions.sh), with passwords from its environment.
	// The bench works as the administrator; the caller and the daemon use
	// their own users, limited to the job queues, as in compose.
	vhost      = "fpmq"
	adminUser  = "admin"
	callerUser = "caller"
	daemonUser = "daemon"
	// poolSize is php-fpm's pm.max_children and the daemon's CONCURRENCY
	// (hence its prefetch), as compose runs them.
	poolSize = 5
	// socketDir holds the pool's socket in the php-fpm and daemon
	// containers; the bench reaches it through the host directory mounted
	// there.
	socketDir = "/run/php-fpm"
	// scriptDir holds bench.php and its samples.log in the php-fpm container.
	scriptDir = "/bench"
	script    = scriptDir + "/bench.php"
)

// loopback publishes a container's port on the host's loopback interface
// only, as compose does, on a port the engine picks.
func loopback(port string) testcontainers.CustomizeRequestOption {
	return func(req *testcontainers.GenericContainerRequest) error {
		if err := testcontainers.WithExposedPorts(port)(req); err != nil {
			return err
		}
		return testcontainers.WithHostConfigModifier(func(h *container.HostConfig) {
			if h.PortBindings == nil {
				h.PortBindings = dockernet.PortMap{}
			}
			h.PortBindings[dockernet.MustParsePort(port)] = []dockernet.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1")}}
		})(req)
	}
}

// harden runs a container as compose runs the project's services: read-only
// root filesystem, no capabilities, no privilege gain.
func harden(h *container.HostConfig) {
	h.ReadonlyRootfs = true
	h.CapDrop = []string{"ALL"}
	h.SecurityOpt = []string{"no-new-privileges:true"}
}

// benchPHP is the worker script that both paths run; see bench.php.
//
//go:embed bench.php
var benchPHP string

// stack is the system under test: RabbitMQ and the php-fpm pool, running for
// the whole bench on a private network, and the daemon, started and removed
// by each measurement that needs it. The pool's socket and the worker script
// live in host directories mounted into the containers, so that the bench
// reaches the same socket and reads the samples the script writes.
type stack struct {
	name      string            // namePrefix + a random suffix, for every object created
	images    map[string]string // image IDs by reference
	docker    *testcontainers.DockerClient
	tmp       string // host directory holding the two below
	sockHost  string // mounted at socketDir
	filesDir  string // mounted at scriptDir
	network   string
	passwords map[string]string // by user
	endpoint  string            // host:port of AMQP from the host
	route     string            // how the host reaches it, for the report
	callerBin string            // the caller, copied out of its image

	rabbit, php *testcontainers.DockerContainer
	daemons     int // daemon containers created so far, to name them

	// containers are the containers to remove on close, in creation order.
	containers []*testcontainers.DockerContainer

	// cpuSource says how container CPU time is read: "cgroup" or "stats".
	cpuSource string

	// cleanups undo the rest of what start did, last first.
	cleanups []func(context.Context) error
}

// newStack returns a stack that is not started yet.
func newStack(ctx context.Context) (*stack, error) {
	docker, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return &stack{
		name:   namePrefix + randomHex(3),
		docker: docker,
		passwords: map[string]string{
			adminUser:  randomHex(16),
			callerUser: randomHex(16),
			daemonUser: randomHex(16),
		},
	}, nil
}

// start checks the images, then creates the directories, the network,
// RabbitMQ and php-fpm. What it created is undone by close, also when it
// fails half-way.
func (s *stack) start(ctx context.Context) error {
	// Containers run from the image IDs, so that a make images during the
	// run cannot change what is measured.
	s.images = map[string]string{}
	for _, ref := range []string{imageRabbitMQ, imagePHPFPM, imageDaemon, imageCaller} {
		img, err := s.docker.ImageInspect(ctx, ref)
		if err != nil {
			return fmt.Errorf("image %s: %w (run make images; the bench never pulls)", ref, err)
		}
		s.images[ref] = img.ID
	}
	if err := s.makeDirs(); err != nil {
		return err
	}

	if _, err := s.docker.NetworkCreate(ctx, s.name, client.NetworkCreateOptions{
		Driver: "bridge",
		Labels: testcontainers.GenericLabels(),
	}); err != nil {
		return fmt.Errorf("create network: %w", err)
	}
	s.network = s.name
	s.cleanups = append(s.cleanups, func(ctx context.Context) error {
		_, err := s.docker.NetworkRemove(ctx, s.network, client.NetworkRemoveOptions{})
		return err
	})

	rabbit, err := testcontainers.Run(ctx, s.images[imageRabbitMQ],
		testcontainers.WithName(s.name+"-rabbitmq"),
		network.WithNetworkName([]string{"rabbitmq"}, s.network),
		// The node name follows the host name, as in compose.
		testcontainers.WithConfigModifier(func(c *container.Config) { c.Hostname = "rabbitmq" }),
		testcontainers.WithEnv(map[string]string{
			"RABBITMQ_VHOST":           vhost,
			"RABBITMQ_QUEUE":           jobQueue,
			"RABBITMQ_ADMIN_USER":      adminUser,
			"RABBITMQ_ADMIN_PASSWORD":  s.passwords[adminUser],
			"RABBITMQ_CALLER_USER":     callerUser,
			"RABBITMQ_CALLER_PASSWORD": s.passwords[callerUser],
			"RABBITMQ_DAEMON_USER":     daemonUser,
			"RABBITMQ_DAEMON_PASSWORD": s.passwords[daemonUser],
		}),
		// Published although the bench prefers the container's address (see
		// findEndpoint): with no port of its own, testcontainers would
		// publish every port the image exposes to the world.
		loopback("5672/tcp"),
		// Debian's RabbitMQ never logs "Server startup complete" to stdout.
		testcontainers.WithWaitStrategy(
			wait.ForExec([]string{"rabbitmq-diagnostics", "-q", "check_port_connectivity"}).
				WithPollInterval(time.Second).WithStartupTimeout(2*time.Minute),
			wait.ForListeningPort("5672/tcp"),
		),
	)
	s.track(rabbit)
	if err != nil {
		return fmt.Errorf("start rabbitmq: %w", err)
	}
	s.rabbit = rabbit
	if err := s.findEndpoint(ctx); err != nil {
		return err
	}

	php, err := testcontainers.Run(ctx, s.images[imagePHPFPM],
		testcontainers.WithName(s.name+"-php-fpm"),
		network.WithNetworkName([]string{"php-fpm"}, s.network),
		// The image exposes php-fpm's default port 9000, on which the pool
		// does not listen; testcontainers would publish it to the world.
		loopback("9000/tcp"),
		testcontainers.WithEnv(map[string]string{
			"FPM_MAX_CHILDREN": strconv.Itoa(poolSize),
			"WORKER_SLEEP":     "0",
		}),
		testcontainers.WithHostConfigModifier(func(h *container.HostConfig) {
			h.Binds = append(h.Binds, s.sockHost+":"+socketDir, s.filesDir+":"+scriptDir)
			// The image declares a volume for the worker log, which bench.php
			// does not write; a tmpfs leaves no anonymous volume behind.
			h.Tmpfs = map[string]string{"/var/log/workers": "", "/tmp": ""}
			harden(h)
		}),
		testcontainers.WithWaitStrategy(
			wait.ForExec([]string{"php", "/usr/local/lib/fpmq/healthcheck.php"}).
				WithPollInterval(500*time.Millisecond).WithStartupTimeout(time.Minute),
		),
	)
	s.track(php)
	if err != nil {
		return fmt.Errorf("start php-fpm: %w", err)
	}
	s.php = php

	if err := s.extractCaller(ctx); err != nil {
		return err
	}
	s.cpuSource = "stats"
	if _, err := os.Stat(cgroupFile("cpuacct", rabbit.GetContainerID(), "cpuacct.usage")); err == nil {
		s.cpuSource = "cgroup"
	}
	return s.declareQueue(ctx)
}

// findEndpoint chooses how the bench reaches RabbitMQ: straight at the
// container's address on the stack's network where the host can route to it,
// as Linux hosts can, so that the bench's consumer and publishers take the
// same path as the daemon; else through the published port, whose
// docker-proxy then adds a hop and CPU time that no figure counts.
func (s *stack) findEndpoint(ctx context.Context) error {
	info, err := s.rabbit.Inspect(ctx)
	if err != nil {
		return fmt.Errorf("inspect rabbitmq: %w", err)
	}
	if nw, ok := info.NetworkSettings.Networks[s.network]; ok && nw.IPAddress.IsValid() {
		addr := net.JoinHostPort(nw.IPAddress.String(), "5672")
		var d net.Dialer
		dialCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if conn, err := d.DialContext(dialCtx, "tcp", addr); err == nil {
			conn.Close()
			s.endpoint, s.route = addr, "the container's address on the bench's bridge network, as the daemon"
			return nil
		}
	}
	if s.endpoint, err = s.rabbit.PortEndpoint(ctx, "5672/tcp", ""); err != nil {
		return fmt.Errorf("rabbitmq endpoint: %w", err)
	}
	s.route = "the published port, through docker-proxy"
	return nil
}

// makeDirs creates the host directories and puts bench.php in place. They
// live in /dev/shm where it exists: the samples bench.php appends must not
// wait for a disk that someone else's image build keeps busy.
func (s *stack) makeDirs() error {
	parent := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		parent = "/dev/shm"
	}
	tmp, err := os.MkdirTemp(parent, namePrefix)
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	s.tmp = tmp
	s.cleanups = append(s.cleanups, func(context.Context) error { return os.RemoveAll(tmp) })
	s.sockHost = filepath.Join(tmp, "socket")
	s.filesDir = filepath.Join(tmp, "files")
	// php-fpm (www-data, master and children) must create the socket and
	// samples.log, and the daemon (uid 10001) must reach the socket. Chmod,
	// because umask applies to Mkdir. The socket itself stays 0660, as
	// php-fpm makes it, so only the pool's user and group can connect.
	for dir, mode := range map[string]os.FileMode{tmp: 0o755, s.sockHost: 0o777, s.filesDir: 0o777} {
		if err := os.MkdirAll(dir, mode); err != nil {
			return fmt.Errorf("make %s: %w", dir, err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			return fmt.Errorf("chmod %s: %w", dir, err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.filesDir, "bench.php"), []byte(benchPHP), 0o644); err != nil {
		return fmt.Errorf("write bench.php: %w", err)
	}
	return nil
}

// extractCaller copies the caller's static binary out of its image, so that
// the bench runs the very binary make images built, on the host like any
// client, without a container's start-up in its time.
func (s *stack) extractCaller(ctx context.Context) error {
	c, err := testcontainers.Run(ctx, s.images[imageCaller],
		testcontainers.WithName(s.name+"-caller"),
		testcontainers.WithNoStart(),
	)
	s.track(c)
	if err != nil {
		return fmt.Errorf("create caller container: %w", err)
	}
	defer s.remove(ctx, c) // on failure, close tries again
	r, err := c.CopyFileFromContainer(ctx, "/caller")
	if err != nil {
		return fmt.Errorf("copy the caller out of %s: %w", imageCaller, err)
	}
	defer r.Close()
	s.callerBin = filepath.Join(s.tmp, "caller")
	f, err := os.OpenFile(s.callerBin, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return fmt.Errorf("write caller: %w", err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write caller: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write caller: %w", err)
	}
	return nil
}

// declareQueue declares the job queue as the daemon and the caller do: a
// durable classic queue without arguments.
func (s *stack) declareQueue(ctx context.Context) error {
	conn, err := s.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	_, err = ch.QueueDeclare(jobQueue,
		true,  // durable
		false, // auto-delete
		false, // exclusive
		false, // no-wait
		nil,
	)
	if err != nil {
		return fmt.Errorf("declare queue %s: %w", jobQueue, err)
	}
	return nil
}

// track makes close remove c, which testcontainers may return even with an
// error (created, then failed to start).
func (s *stack) track(c *testcontainers.DockerContainer) {
	if c != nil {
		s.containers = append(s.containers, c)
	}
}

// containerIDs returns the IDs of the stack's containers.
func (s *stack) containerIDs() []string {
	ids := make([]string, len(s.containers))
	for i, c := range s.containers {
		ids[i] = c.GetContainerID()
	}
	return ids
}

// remove stops c (SIGTERM first, as docker stop does) and removes it with
// its anonymous volumes.
func (s *stack) remove(ctx context.Context, c *testcontainers.DockerContainer) error {
	if err := c.Terminate(ctx, testcontainers.StopTimeout(30*time.Second)); err != nil {
		return fmt.Errorf("remove container %s: %w", c.GetContainerID()[:12], err)
	}
	s.containers = slices.DeleteFunc(s.containers, func(x *testcontainers.DockerContainer) bool { return x == c })
	return nil
}

// close removes everything the stack created, containers first, and
// reports what it could not remove.
func (s *stack) close(ctx context.Context) error {
	var errs []error
	for i := len(s.containers) - 1; i >= 0; i-- {
		errs = append(errs, s.remove(ctx, s.containers[i]))
	}
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		errs = append(errs, s.cleanups[i](ctx))
	}
	s.cleanups = nil
	s.docker.Close()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean up: %w", err)
	}
	return nil
}

// createDaemon creates a daemon container as compose runs it, with
// CONCURRENCY = poolSize and bench.php as its script, and env on top,
// without starting it: the caller starts it when it is ready to measure.
// The stack removes it on close unless the caller removes it first.
func (s *stack) createDaemon(ctx context.Context, env map[string]string) (*testcontainers.DockerContainer, error) {
	s.daemons++
	e := map[string]string{
		"AMQP_URL":        s.url(daemonUser, "rabbitmq:5672"),
		"AMQP_QUEUE":      jobQueue,
		"CONCURRENCY":     strconv.Itoa(poolSize),
		"SCRIPT_FILENAME": script,
		"LOG_FORMAT":      "json",
	}
	maps.Copy(e, env)
	d, err := testcontainers.Run(ctx, s.images[imageDaemon],
		testcontainers.WithName(fmt.Sprintf("%s-daemon-%d", s.name, s.daemons)),
		network.WithNetworkName(nil, s.network),
		testcontainers.WithEnv(e),
		testcontainers.WithHostConfigModifier(func(h *container.HostConfig) {
			h.Binds = append(h.Binds, s.sockHost+":"+socketDir)
			harden(h)
		}),
		testcontainers.WithNoStart(),
	)
	s.track(d)
	if err != nil {
		return nil, fmt.Errorf("create daemon: %w", err)
	}
	return d, nil
}

// startDaemon starts a daemon and waits until it consumes the job queue.
func (s *stack) startDaemon(ctx context.Context) (*testcontainers.DockerContainer, error) {
	d, err := s.createDaemon(ctx, nil)
	if err != nil {
		return nil, err
	}
	if err := d.Start(ctx); err != nil {
		return nil, fmt.Errorf("start daemon: %w", err)
	}
	conn, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	for {
		q, err := ch.QueueDeclarePassive(jobQueue, true, false, false, false, nil) // durable, not auto-delete, not exclusive, wait
		if err != nil {
			return nil, fmt.Errorf("inspect queue: %w", err)
		}
		if q.Consumers > 0 {
			return d, nil
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return nil, fmt.Errorf("wait for the daemon to consume: %w", err)
		}
	}
}

// socketAddress returns the pool's address as the bench reaches it.
func (s *stack) socketAddress() string {
	return "unix://" + filepath.Join(s.sockHost, "commands.sock")
}

// samplesPath returns where bench.php's samples.log appears on the host.
func (s *stack) samplesPath() string { return filepath.Join(s.filesDir, "samples.log") }

// url returns user's AMQP URL for the broker at hostPort.
func (s *stack) url(user, hostPort string) string {
	return fmt.Sprintf("amqp://%s:%s@%s/%s", user, s.passwords[user], hostPort, vhost)
}

// dial connects to the broker from the host, as the administrator. The connection closes when
// ctx ends, which also ends any call blocked on it.
func (s *stack) dial(ctx context.Context) (*amqp.Connection, error) {
	conn, err := amqp.DialConfig(s.url(adminUser, s.endpoint), amqp.Config{
		Heartbeat: 10 * time.Second,
		Locale:    "en_US",
		Dial: func(network, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("connect to rabbitmq: %w", err)
	}
	context.AfterFunc(ctx, func() { conn.Close() })
	return conn, nil
}

// queueState asks RabbitMQ itself, through rabbitmqctl, how many jobs are
// ready and how many are delivered and not acknowledged yet. It is exact but
// takes about a second; the AMQP passive declare is cheap but counts ready
// jobs only.
func (s *stack) queueState(ctx context.Context) (ready, unacked int, err error) {
	code, out, err := s.rabbit.Exec(ctx, []string{
		"rabbitmqctl", "-q", "list_queues", "-p", vhost, "--no-table-headers",
		"name", "messages_ready", "messages_unacknowledged",
	}, tcexec.Multiplexed())
	if err != nil {
		return 0, 0, fmt.Errorf("rabbitmqctl list_queues: %w", err)
	}
	text, err := io.ReadAll(out)
	if err != nil {
		return 0, 0, fmt.Errorf("rabbitmqctl list_queues: %w", err)
	}
	if code != 0 {
		return 0, 0, fmt.Errorf("rabbitmqctl list_queues exited %d: %s", code, bytes.TrimSpace(text))
	}
	for line := range strings.Lines(string(text)) {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == jobQueue {
			ready, err1 := strconv.Atoi(f[1])
			unacked, err2 := strconv.Atoi(f[2])
			if err := errors.Join(err1, err2); err != nil {
				return 0, 0, fmt.Errorf("rabbitmqctl list_queues: %q: %w", line, err)
			}
			return ready, unacked, nil
		}
	}
	return 0, 0, fmt.Errorf("rabbitmqctl list_queues: no queue %s in %q", jobQueue, text)
}

// settled waits until rabbitmqctl shows the job queue empty with nothing
// unacknowledged.
func (s *stack) settled(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		ready, unacked, err := s.queueState(ctx)
		if err != nil {
			return err
		}
		if ready == 0 && unacked == 0 {
			return nil
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return fmt.Errorf("queue not settled (%d ready, %d unacked): %w", ready, unacked, err)
		}
	}
}

// containerCPU returns the CPU time container id has used since it
// started: from its cgroup v1 cpuacct.usage where the engine uses cgroup v1
// (exact, and only a file read), else from the engine's stats.
func (s *stack) containerCPU(ctx context.Context, id string) (time.Duration, error) {
	if s.cpuSource == "cgroup" {
		ns, err := readUint(cgroupFile("cpuacct", id, "cpuacct.usage"))
		return time.Duration(ns), err
	}
	res, err := s.docker.ContainerStats(ctx, id, client.ContainerStatsOptions{})
	if err != nil {
		return 0, fmt.Errorf("container stats: %w", err)
	}
	defer res.Body.Close()
	var st container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		return 0, fmt.Errorf("container stats: %w", err)
	}
	return time.Duration(st.CPUStats.CPUUsage.TotalUsage), nil
}

// otherCPU says where the rest of the CPU figures come from.
const otherCPU = "bench: getrusage(RUSAGE_SELF); docker engine: /proc/PID/stat of dockerd, containerd and the shims of the bench's containers; whole machine: /proc/stat"

// cpuSourceText describes containerCPU's source for the report.
func (s *stack) cpuSourceText() string {
	if s.cpuSource == "cgroup" {
		return "containers: cgroup v1 cpuacct.usage; " + otherCPU
	}
	return "containers: engine stats cpu_stats.cpu_usage.total_usage; " + otherCPU
}

// peakRSS returns the peak resident set of container c's main process,
// VmHWM in /proc/PID/status: the daemon's image holds nothing but the daemon,
// which runs as PID 1 in it, and the bench sees it in the host's /proc.
func (s *stack) peakRSS(ctx context.Context, c *testcontainers.DockerContainer) (uint64, error) {
	info, err := c.Inspect(ctx)
	if err != nil {
		return 0, fmt.Errorf("inspect: %w", err)
	}
	if info.State == nil || info.State.Pid == 0 {
		return 0, errors.New("the container is not running")
	}
	kb, err := statusField(fmt.Sprintf("/proc/%d/status", info.State.Pid), "VmHWM")
	return kb * 1024, err
}

// cgroupMemoryPeak returns the cgroup v1 memory.max_usage_in_bytes of
// container id: its processes' peak memory, page cache included.
func cgroupMemoryPeak(id string) (uint64, error) {
	return readUint(cgroupFile("memory", id, "memory.max_usage_in_bytes"))
}

// cgroupFile returns the path of a cgroup v1 file of a container, where the
// engine's cgroupfs driver puts it.
func cgroupFile(controller, id, name string) string {
	return filepath.Join("/sys/fs/cgroup", controller, "docker", id, name)
}

// readUint reads a file that holds one unsigned integer.
func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// statusField returns the number of a "Name:   123 kB" line of a
// /proc/PID/status file.
func statusField(path, name string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+":"); ok {
			num, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
			return strconv.ParseUint(num, 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no %s line", path, name)
}

// engineCPU returns the CPU time used so far by each process of the Docker
// engine that works for the containers ids, by PID: dockerd and containerd,
// which also serve everyone else, and the containerd shims of those
// containers, which carry their output to the engine.
func engineCPU(ids []string) (map[int]time.Duration, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	cpu := map[int]time.Duration{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // the process ended
		}
		comm, ticks, ok := parseStat(string(b))
		switch {
		case !ok:
			continue
		case strings.HasPrefix(comm, "containerd-shim"):
			cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if err != nil || !slices.ContainsFunc(ids, func(id string) bool {
				return bytes.Contains(cmdline, []byte("-id\x00"+id+"\x00"))
			}) {
				continue
			}
		case comm != "dockerd" && comm != "containerd":
			continue
		}
		// /proc counts in USER_HZ, which is 100 on Linux whatever the kernel's HZ.
		cpu[pid] = time.Duration(ticks) * 10 * time.Millisecond
	}
	if len(cpu) == 0 {
		return nil, errors.New("no dockerd or containerd process in /proc")
	}
	return cpu, nil
}

// engineDelta returns the CPU time the engine's processes used between two
// engineCPU readings. A process that started in between counts in full; one
// that ended in between is left out, so that containers coming and going
// cannot make the delta negative.
func engineDelta(before, after map[int]time.Duration) time.Duration {
	var d time.Duration
	for pid, t := range after {
		d += t - before[pid]
	}
	return d
}

// machineCPU returns the CPU time all CPUs of the machine spent busy so far:
// user, nice, system, irq, softirq and steal time from /proc/stat.
func machineCPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	ticks, err := parseCPULine(line)
	return time.Duration(ticks) * 10 * time.Millisecond, err
}

// parseCPULine returns the busy ticks of /proc/stat's "cpu" line:
// cpu user nice system idle iowait irq softirq steal [guest guest_nice],
// where guest time is already counted in user.
func parseCPULine(line string) (uint64, error) {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected line %q", line)
	}
	var busy uint64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		n, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %q: %w", line, err)
		}
		busy += n
	}
	return busy, nil
}

// parseStat returns the command name and utime+stime (in clock ticks) from
// the text of a /proc/PID/stat file.
func parseStat(stat string) (comm string, ticks uint64, ok bool) {
	open, end := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
	if open < 0 || end < open {
		return "", 0, false
	}
	// After the name: state (field 3), ..., utime (14), stime (15).
	f := strings.Fields(stat[end+1:])
	if len(f) < 13 {
		return "", 0, false
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return "", 0, false
	}
	return stat[open+1 : end], utime + stime, true
}

// selfCPU returns the CPU time this process has used, user and system.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0 // cannot fail for RUSAGE_SELF with a valid pointer
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sleep waits for d, or returns ctx's error if ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // crypto/rand.Read never fails: it crashes the program instead
	return hex.EncodeToString(b)
}
