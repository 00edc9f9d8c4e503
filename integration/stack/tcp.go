package stack

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"time"

	dockernet "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Pools on TCP, as docker/compose/tcp.yaml runs them: every php-fpm
// container listens on TCP, the daemons reach them by one DNS name on an
// internal network of their own, and php-fpm admits only the addresses
// Docker hands out on that network.
const (
	// PoolsAlias is the DNS name of every TCP pool container on the
	// FastCGI network: Docker's DNS answers with all of their addresses.
	PoolsAlias = "pools"
	// PoolPort and ReportsPoolPort are where the commands and reports
	// pools listen on TCP.
	PoolPort        = 9000
	ReportsPoolPort = 9001
	// PoolAddr is the daemons' FASTCGI_ADDR for the commands pools.
	PoolAddr = "tcp://pools:9000"
	// DisallowedLog is what php-fpm logs when a client outside
	// listen.allowed_clients connects (php-src main/fastcgi.c), followed
	// by the address and "has been dropped.".
	DisallowedLog = "Connection disallowed: IP address "
)

// FastCGINetwork is the internal network between the daemons and the TCP
// pools. Docker gives containers addresses from ClientRange only, which
// leaves out Gateway (the host's side of the bridge), and the pools admit
// exactly ClientRange.
type FastCGINetwork struct {
	Name        string
	Subnet      netip.Prefix // a /24
	Gateway     netip.Addr   // .1
	ClientRange netip.Prefix // the upper /25, where every container's address comes from
}

// Outside returns an address of the network outside ClientRange and other
// than the gateway: a container there reaches the pools but may not use
// them.
func (n FastCGINetwork) Outside() netip.Addr {
	a := n.Gateway
	for range 19 {
		a = a.Next()
	}
	return a // .20
}

// StartFastCGINetwork creates the stack's FastCGI network, internal (no
// route out), on a random 10.x.y.0/24 that no other network uses. The
// stack removes it on Close.
func (s *Stack) StartFastCGINetwork(ctx context.Context) (FastCGINetwork, error) {
	if s.fastcgi != nil {
		return *s.fastcgi, nil
	}
	var errs []error
	for range 8 {
		base := netip.AddrFrom4([4]byte{10, byte(200 + rand.IntN(50)), byte(rand.IntN(256)), 0})
		n := FastCGINetwork{
			Name:        s.Name + "-fastcgi",
			Subnet:      netip.PrefixFrom(base, 24),
			Gateway:     base.Next(),
			ClientRange: netip.PrefixFrom(netip.AddrFrom4([4]byte{base.As4()[0], base.As4()[1], base.As4()[2], 128}), 25),
		}
		_, err := s.Docker.NetworkCreate(ctx, n.Name, client.NetworkCreateOptions{
			Driver:   "bridge",
			Internal: true,
			IPAM: &dockernet.IPAM{Config: []dockernet.IPAMConfig{{
				Subnet: n.Subnet, Gateway: n.Gateway, IPRange: n.ClientRange,
			}}},
			Labels: testcontainers.GenericLabels(),
		})
		if err == nil {
			s.networks = append(s.networks, n.Name)
			s.fastcgi = &n
			return n, nil
		}
		// Another network holds that subnet: try another one.
		errs = append(errs, err)
	}
	return FastCGINetwork{}, fmt.Errorf("create the FastCGI network: %w", errors.Join(errs...))
}

// TCPPool starts one php-fpm container whose pools listen on TCP
// (PoolPort, ReportsPoolPort) for the addresses of the FastCGI network's
// ClientRange, with a worker-log volume of its own; it is on the stack's
// network too, where nobody may use it. It returns once both pools answer
// their ping. Call StartFastCGINetwork first.
func (s *Stack) TCPPool(ctx context.Context) (*testcontainers.DockerContainer, error) {
	if s.fastcgi == nil {
		return nil, errors.New("stack: TCPPool before StartFastCGINetwork")
	}
	s.started++
	c, err := testcontainers.Run(ctx, s.Images.PHPFPM,
		testcontainers.WithName(fmt.Sprintf("%s-pool-%d", s.Name, s.started)),
		network.WithNetworkName(nil, s.Network),
		network.WithNetworkName([]string{PoolsAlias}, s.fastcgi.Name),
		// Nothing is published: the image's port 9000 on the loopback only.
		loopback("9000/tcp"),
		testcontainers.WithEnv(map[string]string{
			"FPM_LISTEN":               "0.0.0.0:" + strconv.Itoa(PoolPort),
			"FPM_REPORTS_LISTEN":       "0.0.0.0:" + strconv.Itoa(ReportsPoolPort),
			"FPM_ALLOWED_CLIENTS":      s.fastcgi.ClientRange.String(),
			"FPM_MAX_CHILDREN":         strconv.Itoa(s.opts.Children),
			"WORKER_SLEEP":             strconv.FormatFloat(s.opts.WorkerSleep, 'f', -1, 64),
			"FPM_REPORTS_MAX_CHILDREN": strconv.Itoa(s.opts.ReportsChildren),
			"REPORT_SLEEP":             strconv.FormatFloat(s.opts.ReportSleep, 'f', -1, 64),
		}),
		testcontainers.WithMounts(s.volume(fmt.Sprintf("logs-%d", s.started), WorkerLogDir)),
		testcontainers.WithTmpfs(map[string]string{"/tmp": ""}),
		testcontainers.WithHostConfigModifier(harden),
		// The image's health check: both pools, through the loopback.
		testcontainers.WithWaitStrategy(
			wait.ForExec([]string{"php", "/usr/local/lib/fpmq/healthcheck.php"}).
				WithPollInterval(500*time.Millisecond).WithStartupTimeout(PoolStartTimeout),
		),
	)
	s.track(c)
	if err != nil {
		return c, fmt.Errorf("start a TCP pool: %w", err)
	}
	return c, nil
}

// TCPDaemon runs a daemon that reaches the TCP pools through PoolAddr on
// the FastCGI network, with no socket volume; otherwise as Daemon.
func (s *Stack) TCPDaemon(ctx context.Context, r Run) (*testcontainers.DockerContainer, error) {
	if s.fastcgi == nil {
		return nil, errors.New("stack: TCPDaemon before StartFastCGINetwork")
	}
	env := map[string]string{
		"AMQP_URL":     s.URL(DaemonUser),
		"CONCURRENCY":  strconv.Itoa(s.opts.Children),
		"LOG_FORMAT":   "json",
		"FASTCGI_ADDR": PoolAddr,
	}
	if r.Wait == nil {
		r.Wait = DaemonReady()
	}
	return s.run(ctx, "daemon", s.Images.Daemon, env, r,
		network.WithNetworkName(nil, s.fastcgi.Name),
		loopback(MetricsPort),
	)
}

// Probe asks a pool for its ping page from a new container of the php-fpm
// image (its healthcheck.php) on the network netName alone, at the address
// ip (zero: one Docker picks), and returns the exit status, 0 for "pong",
// and the output. target is tcp://HOST:PORT.
func (s *Stack) Probe(ctx context.Context, netName string, ip netip.Addr, target string) (code int, out string, err error) {
	s.started++
	opts := []testcontainers.ContainerCustomizer{
		testcontainers.WithName(fmt.Sprintf("%s-probe-%d", s.Name, s.started)),
		network.WithNetworkName(nil, netName),
		testcontainers.WithCmd("php", "/usr/local/lib/fpmq/healthcheck.php", target),
		loopback("9000/tcp"),
		testcontainers.WithHostConfigModifier(harden),
		testcontainers.WithWaitStrategy(wait.ForExit().WithExitTimeout(CallerExitTimeout)),
	}
	if ip.IsValid() {
		opts = append(opts, testcontainers.WithEndpointSettingsModifier(func(settings map[string]*dockernet.EndpointSettings) {
			if e := settings[netName]; e != nil {
				e.IPAMConfig = &dockernet.EndpointIPAMConfig{IPv4Address: ip}
			}
		}))
	}
	c, err := testcontainers.Run(ctx, s.Images.PHPFPM, opts...)
	s.track(c)
	if err != nil {
		return 0, "", fmt.Errorf("run a probe: %w", err)
	}
	defer func() { err = errors.Join(err, s.Remove(ctx, c)) }()
	if code, err = ExitCode(ctx, c); err != nil {
		return 0, "", err
	}
	out, err = Logs(ctx, c)
	return code, out, err
}

// Address returns c's IPv4 address on the network netName.
func (s *Stack) Address(ctx context.Context, c *testcontainers.DockerContainer, netName string) (netip.Addr, error) {
	r, err := s.Docker.ContainerInspect(ctx, c.GetContainerID(), client.ContainerInspectOptions{})
	if err != nil {
		return netip.Addr{}, fmt.Errorf("inspect container: %w", err)
	}
	if r.Container.NetworkSettings != nil {
		if e := r.Container.NetworkSettings.Networks[netName]; e != nil && e.IPAddress.IsValid() {
			return e.IPAddress, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("container %s has no address on %s", c.GetContainerID()[:12], netName)
}

// Disallowed returns the client addresses php-fpm in c dropped because
// listen.allowed_clients does not list them, in the order it logged them.
func Disallowed(ctx context.Context, c *testcontainers.DockerContainer) ([]string, error) {
	logs, err := Logs(ctx, c)
	if err != nil {
		return nil, err
	}
	var addrs []string
	for _, line := range strings.Split(logs, "\n") {
		_, rest, ok := strings.Cut(line, DisallowedLog)
		if !ok {
			continue
		}
		addr, _, _ := strings.Cut(strings.TrimPrefix(rest, "'"), "'")
		addrs = append(addrs, addr)
	}
	return addrs, nil
}
