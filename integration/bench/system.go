package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/fpmq/fpmq/integration/stack"
)

const (
	// namePrefix starts the name of everything the bench creates in Docker,
	// so that nobody mistakes it for theirs.
	namePrefix = "fpmq-bench-"
	jobQueue   = stack.JobQueue
	// scriptDir holds bench.php and its samples.log in the php-fpm container.
	scriptDir = "/bench"
	script    = scriptDir + "/bench.php"
)

// benchPHP is the worker script that both paths run; see bench.php.
//
//go:embed bench.php
var benchPHP string

// system is what the bench measures: a stack of RabbitMQ and the php-fpm
// pool, running for the whole bench from the images make images built, and
// the daemon, started and removed by each measurement that needs it. The
// pool's socket and the worker script live in host directories mounted into
// the containers, so that the bench reaches the same socket and reads the
// samples the script writes.
type system struct {
	*stack.Stack
	dep deployment // what compose runs: the daemon's settings come from it
	// concurrency is the daemon's CONCURRENCY (hence its prefetch) in the
	// deployment, and how many requests the bench's own clients keep going.
	concurrency int
	children    int          // php-fpm's pm.max_children
	refs        stack.Images // the images' references; Images holds their IDs
	tmp         string       // host directory holding the two below
	sockHost    string       // mounted at stack.SocketDir
	filesDir    string       // mounted at scriptDir
	endpoint    string       // host:port of AMQP from the host
	route       string       // how the host reaches it, for the report
	callerBin   string       // the caller, copied out of its image

	// cpuSource says how container CPU time is read: "cgroup" or "stats".
	cpuSource string
}

// startSystem starts the stack as dep deploys it, from the images refs,
// with children php-fpm children if positive, and prepares what the bench
// needs of it. On failure it removes what it created.
func startSystem(ctx context.Context, refs stack.Images, dep deployment, children int) (s *system, err error) {
	s = &system{refs: refs, dep: dep, concurrency: dep.concurrency, children: dep.children}
	if children > 0 {
		s.children = children
	}
	// Containers run from the image IDs, so that a make images during the
	// run cannot change what is measured.
	ids, err := stack.Pin(ctx, s.refs)
	if err != nil {
		return nil, fmt.Errorf("%w (run make images; the bench never pulls)", err)
	}
	if err := s.makeDirs(); err != nil {
		return nil, err
	}
	s.Stack, err = stack.Start(ctx, dep.stackOptions(ids, children, s.sockHost, s.filesDir))
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(s.tmp))
	}
	defer func() {
		if err != nil {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			defer cancel()
			err = errors.Join(err, s.close(ctx))
			s = nil
		}
	}()
	if err := s.findEndpoint(ctx); err != nil {
		return s, err
	}
	// The bench runs the very binary make images built, on the host like any
	// client, without a container's start-up in its time.
	s.callerBin = filepath.Join(s.tmp, "caller")
	if err := s.ExtractFile(ctx, s.Images.Caller, "/caller", s.callerBin, 0o755); err != nil {
		return s, err
	}
	s.cpuSource = "stats"
	if _, err := os.Stat(cgroupFile("cpuacct", s.RabbitMQ.GetContainerID(), "cpuacct.usage")); err == nil {
		s.cpuSource = "cgroup"
	}
	return s, s.declareQueue(ctx)
}

// close removes the stack and the host directories.
func (s *system) close(ctx context.Context) error {
	return errors.Join(s.Close(ctx), os.RemoveAll(s.tmp))
}

// findEndpoint chooses how the bench reaches RabbitMQ: straight at the
// container's address on the stack's network where the host can route to it,
// as Linux hosts can, so that the bench's consumer and publishers take the
// same path as the daemon; else through the published port, whose
// docker-proxy then adds a hop and CPU time that no figure counts.
func (s *system) findEndpoint(ctx context.Context) error {
	info, err := s.RabbitMQ.Inspect(ctx)
	if err != nil {
		return fmt.Errorf("inspect rabbitmq: %w", err)
	}
	if nw, ok := info.NetworkSettings.Networks[s.Network]; ok && nw.IPAddress.IsValid() {
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
	if s.endpoint, err = s.Endpoint(ctx); err != nil {
		return err
	}
	s.route = "the published port, through docker-proxy"
	return nil
}

// makeDirs creates the host directories and puts bench.php in place. They
// live in /dev/shm where it exists: the samples bench.php appends must not
// wait for a disk that someone else's image build keeps busy.
func (s *system) makeDirs() error {
	parent := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		parent = "/dev/shm"
	}
	tmp, err := os.MkdirTemp(parent, namePrefix)
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	s.tmp = tmp
	s.sockHost = filepath.Join(tmp, "socket")
	s.filesDir = filepath.Join(tmp, "files")
	// php-fpm (www-data, master and children) must create the socket and
	// samples.log, and the daemon (uid 10001) must reach the socket. Chmod,
	// because umask applies to Mkdir. The socket itself stays 0660, as
	// php-fpm makes it, so only the pool's user and group can connect.
	for dir, mode := range map[string]os.FileMode{tmp: 0o755, s.sockHost: 0o777, s.filesDir: 0o777} {
		if err := os.MkdirAll(dir, mode); err != nil {
			return errors.Join(fmt.Errorf("make %s: %w", dir, err), os.RemoveAll(tmp))
		}
		if err := os.Chmod(dir, mode); err != nil {
			return errors.Join(fmt.Errorf("chmod %s: %w", dir, err), os.RemoveAll(tmp))
		}
	}
	if err := os.WriteFile(filepath.Join(s.filesDir, "bench.php"), []byte(benchPHP), 0o644); err != nil {
		return errors.Join(fmt.Errorf("write bench.php: %w", err), os.RemoveAll(tmp))
	}
	return nil
}

// containerIDs returns the IDs of the stack's containers.
func (s *system) containerIDs() []string {
	var ids []string
	for _, c := range s.Containers() {
		ids = append(ids, c.GetContainerID())
	}
	return ids
}

// socketPath returns the pool's socket as the bench reaches it.
func (s *system) socketPath() string { return filepath.Join(s.sockHost, "commands.sock") }

// samplesPath returns where bench.php's samples.log appears on the host.
func (s *system) samplesPath() string { return filepath.Join(s.filesDir, "samples.log") }

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
