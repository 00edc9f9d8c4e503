// Package stack runs fpmq's system in containers, as compose runs it, for
// the integration tests and the benchmark: RabbitMQ and the php-fpm pool on a
// private network, with the pool's socket shared with the daemons, and the
// daemon and the caller started on demand. Every container is hardened as
// compose.yaml hardens it and publishes its ports on the loopback interface
// only. The stack talks to the system only from outside: through Docker,
// RabbitMQ and the containers' files.
//
// A Stack owns everything it creates and removes it all on Close, also after
// a failed Start.
package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	dockernet "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// The broker's vhost, users and queues, as the rabbitmq image defines them
// at start (docker/rabbitmq/definitions.sh). Each Stack gives every user a
// password of its own.
const (
	VHost      = "fpmq"
	AdminUser  = "admin"  // may do everything
	CallerUser = "caller" // may only declare the job queue and publish to it
	DaemonUser = "daemon" // may only use the job queue, its retry and dead-letter queues
	// OperatorUser may only read the dead-letter queue and publish to the
	// default exchange: daemon dead, as compose's ops service runs it.
	OperatorUser = "operator"
	// ConsoleUser has the operator's rights, for the web console.
	ConsoleUser = "console"
	JobQueue    = "commands"
	DeadQueue   = JobQueue + ".dead"
	// ReportsQueue is the second route's job queue, served by the pool
	// "reports" (ReportsSocket) and php/report.php, as compose's
	// daemon-reports has it. The users may use both routes' queues.
	ReportsQueue     = "reports"
	ReportsDeadQueue = ReportsQueue + ".dead"
)

// Paths and ports inside the containers.
const (
	SocketDir    = "/run/php-fpm" // the pool's socket, shared by php-fpm and the daemons
	WorkerLogDir = "/var/log/workers"
	WorkerLog    = WorkerLogDir + "/workers.log" // where php/worker.php writes "Processing N"
	ReportLog    = WorkerLogDir + "/reports.log" // where php/report.php writes "Report N"
	// ReportsSocket is the reports pool's socket, next to the commands pool's.
	ReportsSocket = SocketDir + "/reports.sock"
	AMQPPort      = "5672/tcp"
	MetricsPort   = "9090/tcp" // the daemon's /metrics, /healthz and /readyz
	ConsolePort   = "8080/tcp" // the web console's HTTP
)

// How long the stack waits for its parts.
const (
	BrokerStartTimeout = 2 * time.Minute // RabbitMQ boots in 10-30 s on a busy machine
	PoolStartTimeout   = time.Minute
	DaemonStartTimeout = time.Minute
	CallerExitTimeout  = 2 * time.Minute
	// StopTimeout is how long a container may take to stop on SIGTERM before
	// SIGKILL: a daemon drains its running jobs in that time.
	StopTimeout = 30 * time.Second
)

// ConsumingLog is in the daemon's log once it subscribed to its queue. Wait
// for DaemonReady instead: the line only shows whether a daemon ever
// consumed.
const ConsumingLog = `"message":"consuming"`

// DaemonReady waits until a daemon answers ready on /readyz: it consumes its
// queue (subscribed, not paused), the broker does not block it, and its
// php-fpm pool answers. It asks as compose's health check does, with
// "daemon healthcheck" inside the container, every 200 ms for at most
// DaemonStartTimeout, and fails at once if the container stopped.
func DaemonReady() wait.Strategy {
	return wait.ForExec([]string{"/daemon", "healthcheck"}).
		WithPollInterval(200 * time.Millisecond).
		WithStartupTimeout(DaemonStartTimeout)
}

// Options tune a stack; zero values mean the defaults.
type Options struct {
	// Images run the containers (see Build and Pin). Required.
	Images Images
	// Name starts the name of every container, volume and network the
	// stack creates, followed by a random suffix ("fpmq-stack-").
	Name string
	// Children is php-fpm's pm.max_children and the daemons' CONCURRENCY (5).
	Children int
	// WorkerSleep is how many seconds each job of php/worker.php sleeps (0).
	WorkerSleep float64
	// ReportsChildren is the reports pool's pm.max_children and its
	// daemon's CONCURRENCY (2).
	ReportsChildren int
	// ReportSleep is how many seconds each job of php/report.php sleeps (0).
	ReportSleep float64
	// SocketDir is a host directory bound at SocketDir in php-fpm and the
	// daemons, so that the host reaches the pool; empty means a volume of
	// the stack's own, as compose has.
	SocketDir string
	// PHPBinds are further bind mounts of php-fpm, "HOST:CONTAINER[:ro]".
	PHPBinds []string
	// RabbitMQFiles are copied into RabbitMQ before it starts.
	RabbitMQFiles []testcontainers.ContainerFile
	// ClusterNodes, if above 0, starts a RabbitMQ cluster of that many
	// nodes instead of one broker: see cluster.go.
	ClusterNodes int
	// NoPHP starts no php-fpm on the shared socket: PHP stays nil, for a
	// stack whose pools listen on TCP (see StartFastCGINetwork).
	NoPHP bool
	// RabbitMQEnv and PHPEnv are added to RabbitMQ's and php-fpm's
	// environment, over what the stack sets (the benchmark passes compose's
	// settings this way).
	RabbitMQEnv, PHPEnv map[string]string
	// Logging is the log driver and its options of each kind of container,
	// by compose service name: "rabbitmq", "php-fpm" and "daemon" (every
	// daemon); the engine's default for the others.
	Logging map[string]container.LogConfig
}

// Stack is one running system.
type Stack struct {
	Name      string
	Network   string
	Images    Images
	Passwords map[string]string // by user
	RabbitMQ  *testcontainers.DockerContainer
	PHP       *testcontainers.DockerContainer
	Docker    *testcontainers.DockerClient
	// Nodes are the cluster's nodes in order, with Options.ClusterNodes;
	// RabbitMQ is then the last of them.
	Nodes []*testcontainers.DockerContainer

	opts    Options
	socket  testcontainers.CustomizeRequestOption // mounts the pool's socket, for php-fpm and the daemons
	volumes []string                              // to remove on Close
	started int                                   // daemons and callers so far, to name them
	fastcgi *FastCGINetwork                       // nil until StartFastCGINetwork
	// networks are those to remove on Close besides Network.
	networks []string

	// containers are those to remove on Close, in creation order.
	containers []*testcontainers.DockerContainer
}

// Start creates the network and the volumes, and starts RabbitMQ and php-fpm,
// returning once both are ready. On failure it removes what it created.
func Start(ctx context.Context, opts Options) (s *Stack, err error) {
	if opts.Images == (Images{}) {
		return nil, errors.New("stack: no images")
	}
	if opts.Name == "" {
		opts.Name = "fpmq-stack-"
	}
	if opts.Children == 0 {
		opts.Children = 5
	}
	if opts.ReportsChildren == 0 {
		opts.ReportsChildren = 2
	}
	docker, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	s = &Stack{
		Name:   opts.Name + randomHex(3),
		Images: opts.Images,
		Docker: docker,
		Passwords: map[string]string{
			AdminUser:    randomHex(16),
			CallerUser:   randomHex(16),
			DaemonUser:   randomHex(16),
			OperatorUser: randomHex(16),
			ConsoleUser:  randomHex(16),
		},
		opts: opts,
	}
	// A failed Start returns a nil s before this runs: it closes st.
	st := s
	defer func() {
		if err != nil {
			// Cleaning up must not be cut short by the cancellation that
			// made Start fail.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			defer cancel()
			err = errors.Join(err, st.Close(ctx))
			s = nil
		}
	}()

	if _, err := docker.NetworkCreate(ctx, s.Name, client.NetworkCreateOptions{
		Driver: "bridge",
		Labels: testcontainers.GenericLabels(),
	}); err != nil {
		return nil, fmt.Errorf("create network: %w", err)
	}
	s.Network = s.Name
	s.socket = bind(opts.SocketDir + ":" + SocketDir)
	if opts.SocketDir == "" {
		s.socket = testcontainers.WithMounts(s.volume("socket", SocketDir))
	}
	if opts.ClusterNodes > 0 {
		err = s.startCluster(ctx)
	} else {
		err = s.startRabbitMQ(ctx)
	}
	if err != nil {
		return nil, err
	}
	if opts.NoPHP {
		return s, nil
	}
	if err := s.startPHP(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// volume returns a mount of a new volume of the stack's at target.
func (s *Stack) volume(purpose, target string) testcontainers.ContainerMount {
	name := s.Name + "-" + purpose
	s.volumes = append(s.volumes, name)
	return testcontainers.VolumeMount(name, testcontainers.ContainerMountTarget(target))
}

func (s *Stack) startRabbitMQ(ctx context.Context) error {
	env := s.rabbitEnv()
	maps.Copy(env, s.opts.RabbitMQEnv)
	c, err := s.runBroker(ctx, "rabbitmq", env, s.logging("rabbitmq"))
	if err != nil {
		return fmt.Errorf("start rabbitmq: %w", err)
	}
	s.RabbitMQ = c
	return nil
}

// runBroker runs a container of the rabbitmq image with host as its name
// on the stack's network and its host name (the node's name follows it,
// as in compose), env, the AMQP port published on loopback and the
// stack's broker files, and waits until its listeners accept connections.
// extra customizes the container further.
func (s *Stack) runBroker(ctx context.Context, host string, env map[string]string, extra ...testcontainers.ContainerCustomizer) (*testcontainers.DockerContainer, error) {
	opts := append([]testcontainers.ContainerCustomizer{
		testcontainers.WithName(s.Name + "-" + host),
		network.WithNetworkName([]string{host}, s.Network),
		testcontainers.WithConfigModifier(func(c *container.Config) { c.Hostname = host }),
		testcontainers.WithEnv(env),
		loopback(AMQPPort),
		testcontainers.WithFiles(s.opts.RabbitMQFiles...),
		// Debian's RabbitMQ never logs "Server startup complete" to
		// stdout; the image's health check is quick enough to poll.
		testcontainers.WithWaitStrategy(
			wait.ForExec([]string{"/usr/local/bin/fpmq-healthcheck"}).
				WithPollInterval(250*time.Millisecond).WithStartupTimeout(BrokerStartTimeout),
			wait.ForListeningPort(AMQPPort),
		),
	}, extra...)
	c, err := testcontainers.Run(ctx, s.Images.RabbitMQ, opts...)
	s.track(c)
	return c, err
}

// rabbitEnv is the broker's environment: its vhost, users and queues.
func (s *Stack) rabbitEnv() map[string]string {
	return map[string]string{
		"RABBITMQ_VHOST":             VHost,
		"RABBITMQ_QUEUES":            JobQueue + " " + ReportsQueue,
		"RABBITMQ_ADMIN_USER":        AdminUser,
		"RABBITMQ_ADMIN_PASSWORD":    s.Passwords[AdminUser],
		"RABBITMQ_CALLER_USER":       CallerUser,
		"RABBITMQ_CALLER_PASSWORD":   s.Passwords[CallerUser],
		"RABBITMQ_DAEMON_USER":       DaemonUser,
		"RABBITMQ_DAEMON_PASSWORD":   s.Passwords[DaemonUser],
		"RABBITMQ_OPERATOR_USER":     OperatorUser,
		"RABBITMQ_OPERATOR_PASSWORD": s.Passwords[OperatorUser],
		"RABBITMQ_CONSOLE_USER":      ConsoleUser,
		"RABBITMQ_CONSOLE_PASSWORD":  s.Passwords[ConsoleUser],
	}
}

func (s *Stack) startPHP(ctx context.Context) error {
	env := map[string]string{
		"FPM_MAX_CHILDREN":         strconv.Itoa(s.opts.Children),
		"WORKER_SLEEP":             strconv.FormatFloat(s.opts.WorkerSleep, 'f', -1, 64),
		"FPM_REPORTS_MAX_CHILDREN": strconv.Itoa(s.opts.ReportsChildren),
		"REPORT_SLEEP":             strconv.FormatFloat(s.opts.ReportSleep, 'f', -1, 64),
	}
	maps.Copy(env, s.opts.PHPEnv)
	c, err := testcontainers.Run(ctx, s.Images.PHPFPM,
		testcontainers.WithName(s.Name+"-php-fpm"),
		s.logging("php-fpm"),
		network.WithNetworkName([]string{"php-fpm"}, s.Network),
		// The image exposes php-fpm's default port 9000, on which the pool
		// does not listen: published nowhere but on the loopback.
		loopback("9000/tcp"),
		testcontainers.WithEnv(env),
		s.socket,
		testcontainers.WithMounts(s.volume("logs", WorkerLogDir)),
		// PHP may write temporary files to /tmp only, as in compose.
		testcontainers.WithTmpfs(map[string]string{"/tmp": ""}),
		testcontainers.WithHostConfigModifier(func(h *container.HostConfig) {
			h.Binds = append(h.Binds, s.opts.PHPBinds...)
			harden(h)
		}),
		// Both pools answer.
		testcontainers.WithWaitStrategy(
			wait.ForExec([]string{"php", "/usr/local/lib/fpmq/healthcheck.php"}).
				WithPollInterval(500*time.Millisecond).WithStartupTimeout(PoolStartTimeout),
			wait.ForExec([]string{"php", "/usr/local/lib/fpmq/healthcheck.php", "unix://" + ReportsSocket}).
				WithPollInterval(500*time.Millisecond).WithStartupTimeout(PoolStartTimeout),
		),
	)
	s.track(c)
	if err != nil {
		return fmt.Errorf("start php-fpm: %w", err)
	}
	s.PHP = c
	return nil
}

// URL returns user's AMQP URL inside the stack's network, as the daemon and
// the caller reach the broker.
func (s *Stack) URL(user string) string { return s.URLAt(user, "rabbitmq:5672") }

// URLAt returns user's AMQP URL for the broker at hostPort.
func (s *Stack) URLAt(user, hostPort string) string {
	return fmt.Sprintf("amqp://%s:%s@%s/%s", user, s.Passwords[user], hostPort, VHost)
}

// Endpoint returns host:port of the broker's published AMQP port. It changes
// when RabbitMQ restarts.
func (s *Stack) Endpoint(ctx context.Context) (string, error) {
	endpoint, err := s.RabbitMQ.PortEndpoint(ctx, AMQPPort, "")
	if err != nil {
		return "", fmt.Errorf("rabbitmq endpoint: %w", err)
	}
	return endpoint, nil
}

// Run describes one container of the daemon's or the caller's image.
type Run struct {
	// Env is added to the defaults: AMQP_URL with the program's own user
	// and, for the daemon, CONCURRENCY (Options.Children) and LOG_FORMAT=json.
	Env   map[string]string
	Args  []string
	Binds []string // bind mounts, "HOST:CONTAINER[:ro]"
	// Wait says when the container is ready. Nil means: for the daemon,
	// DaemonReady; for the caller, once it exited.
	Wait wait.Strategy
	// NoStart creates the container without starting it, nor waiting.
	NoStart bool
}

// Daemon runs a daemon on the stack, with the pool's socket and its metrics
// port published on the loopback. The stack removes it on Close; the
// container returned with an error, if not nil, is the stack's too.
func (s *Stack) Daemon(ctx context.Context, r Run) (*testcontainers.DockerContainer, error) {
	env := map[string]string{
		"AMQP_URL":    s.URL(DaemonUser),
		"CONCURRENCY": strconv.Itoa(s.opts.Children),
		"LOG_FORMAT":  "json",
	}
	if r.Wait == nil {
		r.Wait = DaemonReady()
	}
	return s.run(ctx, "daemon", s.Images.Daemon, env, r,
		s.socket,
		loopback(MetricsPort),
		s.logging("daemon"),
	)
}

// ReportsDaemon runs a daemon of the reports route, as compose's
// daemon-reports: queue ReportsQueue, the reports pool, php/report.php and
// CONCURRENCY Options.ReportsChildren; r.Env may change any of them.
func (s *Stack) ReportsDaemon(ctx context.Context, r Run) (*testcontainers.DockerContainer, error) {
	env := map[string]string{
		"AMQP_QUEUE":      ReportsQueue,
		"FASTCGI_ADDR":    "unix://" + ReportsSocket,
		"SCRIPT_FILENAME": "/app/report.php",
		"CONCURRENCY":     strconv.Itoa(s.opts.ReportsChildren),
	}
	maps.Copy(env, r.Env)
	r.Env = env
	return s.Daemon(ctx, r)
}

// Caller runs the caller on the stack with r.Args, by default until it
// exits: see ExitCode and Logs for what it did.
func (s *Stack) Caller(ctx context.Context, r Run) (*testcontainers.DockerContainer, error) {
	env := map[string]string{"AMQP_URL": s.URL(CallerUser)}
	if r.Wait == nil {
		r.Wait = wait.ForExit().WithExitTimeout(CallerExitTimeout)
	}
	return s.run(ctx, "caller", s.Images.Caller, env, r)
}

// PHPCommand runs a command of the php-fpm image on the stack, r.Args such as
// "php", "/app/test/enqueue.php": as www-data, hardened, with the caller's
// AMQP_URL, by default until it exits. It is how an application enqueues
// jobs with the PHP library in php/ (/app in the image).
func (s *Stack) PHPCommand(ctx context.Context, r Run) (*testcontainers.DockerContainer, error) {
	env := map[string]string{"AMQP_URL": s.URL(CallerUser)}
	if r.Wait == nil {
		r.Wait = wait.ForExit().WithExitTimeout(CallerExitTimeout)
	}
	// The image exposes php-fpm's port 9000: on the loopback only, as always.
	return s.run(ctx, "php", s.Images.PHPFPM, env, r, loopback("9000/tcp"))
}

// Ops runs the operators' command on the stack, as compose's ops service
// does: the daemon's image with r.Args (such as "dead", "list") as the
// operator user, by default until it exits. It has no terminal: progress
// stays off, and purge needs --yes.
func (s *Stack) Ops(ctx context.Context, r Run) (*testcontainers.DockerContainer, error) {
	env := map[string]string{"AMQP_URL": s.URL(OperatorUser)}
	if r.Wait == nil {
		r.Wait = wait.ForExit().WithExitTimeout(CallerExitTimeout)
	}
	// The image exposes the metrics port: on the loopback only, as always.
	return s.run(ctx, "ops", s.Images.Daemon, env, r, loopback(MetricsPort))
}

// Console runs the web console on the stack, as compose's console
// service: its own RabbitMQ user, listening on every interface of the
// container with its port published on the host's loopback, by default
// until its health check passes. r.Env must add what compose takes from
// .env: CONSOLE_DAEMONS, ADMIN_TOKEN and the CONSOLE_* users.
func (s *Stack) Console(ctx context.Context, r Run) (*testcontainers.DockerContainer, error) {
	if s.Images.Console == "" {
		return nil, errors.New("run console: no console image (Images.Console)")
	}
	env := map[string]string{
		"AMQP_URL":                s.URL(ConsoleUser),
		"RABBITMQ_MANAGEMENT_URL": "http://rabbitmq:15672",
		"CONSOLE_ADDR":            ":8080",
		"LOG_FORMAT":              "json",
	}
	if r.Wait == nil {
		r.Wait = wait.ForExec([]string{"/console", "healthcheck"}).
			WithPollInterval(200 * time.Millisecond).WithStartupTimeout(DaemonStartTimeout)
	}
	return s.run(ctx, "console", s.Images.Console, env, r, loopback(ConsolePort))
}

// run runs one of the Go programs as compose does: on the stack's network,
// hardened, with env and then r.Env in its environment.
func (s *Stack) run(ctx context.Context, program, image string, env map[string]string, r Run, more ...testcontainers.ContainerCustomizer) (*testcontainers.DockerContainer, error) {
	s.started++
	maps.Copy(env, r.Env)
	opts := []testcontainers.ContainerCustomizer{
		testcontainers.WithName(fmt.Sprintf("%s-%s-%d", s.Name, program, s.started)),
		network.WithNetworkName(nil, s.Network),
		testcontainers.WithEnv(env),
		testcontainers.WithCmd(r.Args...),
		testcontainers.WithHostConfigModifier(func(h *container.HostConfig) {
			h.Binds = append(h.Binds, r.Binds...)
			harden(h)
		}),
	}
	opts = append(opts, more...)
	if r.NoStart {
		opts = append(opts, testcontainers.WithNoStart())
	} else {
		opts = append(opts, testcontainers.WithWaitStrategy(r.Wait))
	}
	c, err := testcontainers.Run(ctx, image, opts...)
	s.track(c)
	if err != nil {
		return c, fmt.Errorf("run %s: %w", program, err)
	}
	return c, nil
}

// logging sets the log driver Options.Logging gives service, if any.
func (s *Stack) logging(service string) testcontainers.CustomizeRequestOption {
	return testcontainers.WithHostConfigModifier(func(h *container.HostConfig) {
		if lc, ok := s.opts.Logging[service]; ok {
			h.LogConfig = lc
		}
	})
}

// bind adds bind mounts, "HOST:CONTAINER[:ro]", to a container.
func bind(binds ...string) testcontainers.CustomizeRequestOption {
	return testcontainers.WithHostConfigModifier(func(h *container.HostConfig) {
		h.Binds = append(h.Binds, binds...)
	})
}

// harden runs a container as compose runs the project's services: read-only
// root filesystem, no capabilities, no privilege gain.
func harden(h *container.HostConfig) {
	h.ReadonlyRootfs = true
	h.CapDrop = []string{"ALL"}
	h.SecurityOpt = []string{"no-new-privileges:true"}
}

// loopback publishes a container's port on the host's loopback interface
// only, as compose does, on a port the engine picks. A container needs at
// least one: without, testcontainers publishes every port its image exposes
// on every interface.
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

// track makes Close remove c, which testcontainers may return even with an
// error (created, then failed to start).
func (s *Stack) track(c *testcontainers.DockerContainer) {
	if c != nil {
		s.containers = append(s.containers, c)
	}
}

// Containers returns the stack's containers, in creation order.
func (s *Stack) Containers() []*testcontainers.DockerContainer {
	return slices.Clone(s.containers)
}

// Remove stops c (SIGTERM, then SIGKILL after StopTimeout, as docker stop
// does) and removes it with its anonymous volumes. Removing a container
// that is gone already is no error.
func (s *Stack) Remove(ctx context.Context, c *testcontainers.DockerContainer) error {
	if err := testcontainers.TerminateContainer(c, testcontainers.StopContext(ctx), testcontainers.StopTimeout(StopTimeout)); err != nil {
		return fmt.Errorf("remove container %s: %w", c.GetContainerID()[:12], err)
	}
	s.containers = slices.DeleteFunc(s.containers, func(x *testcontainers.DockerContainer) bool { return x == c })
	return nil
}

// Close removes everything the stack created, containers first, and
// reports what it could not remove.
func (s *Stack) Close(ctx context.Context) error {
	var errs []error
	for i := len(s.containers) - 1; i >= 0; i-- {
		errs = append(errs, s.Remove(ctx, s.containers[i]))
	}
	for _, name := range s.volumes {
		// A volume is created with the first container that mounts it.
		if _, err := s.Docker.VolumeRemove(ctx, name, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove volume %s: %w", name, err))
		}
	}
	s.volumes = nil
	for _, name := range s.networks {
		if _, err := s.Docker.NetworkRemove(ctx, name, client.NetworkRemoveOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("remove network %s: %w", name, err))
		}
	}
	s.networks = nil
	if s.Network != "" {
		if _, err := s.Docker.NetworkRemove(ctx, s.Network, client.NetworkRemoveOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("remove network %s: %w", s.Network, err))
		}
		s.Network = ""
	}
	s.Docker.Close()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean up %s: %w", s.Name, err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // crypto/rand.Read never fails: it crashes the program instead
	return hex.EncodeToString(b)
}
