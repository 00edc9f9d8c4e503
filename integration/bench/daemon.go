package main

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/fpmq/fpmq/integration/stack"
)

// createDaemon creates a daemon container as compose runs it, with
// compose's settings, bench.php as its script, and env on top, without
// starting it: the caller starts it when it is ready to measure. The stack
// removes it on close unless the caller removes it first.
func (s *system) createDaemon(ctx context.Context, env map[string]string) (*testcontainers.DockerContainer, error) {
	e := maps.Clone(s.dep.daemonEnv)
	e["AMQP_QUEUE"], e["SCRIPT_FILENAME"] = jobQueue, script
	maps.Copy(e, env)
	// Starting it waits for its log line, not for readiness: the figures
	// were taken with this wait, and a health check run in the container
	// would add to the engine's CPU time they count.
	return s.Daemon(ctx, stack.Run{Env: e, NoStart: true, Wait: wait.ForLog(stack.ConsumingLog).WithStartupTimeout(stack.DaemonStartTimeout)})
}

// startDaemon starts a daemon with env over compose's settings and waits
// until it consumes the job queue.
func (s *system) startDaemon(ctx context.Context, env map[string]string) (*testcontainers.DockerContainer, error) {
	d, err := s.createDaemon(ctx, env)
	if err != nil {
		return nil, err
	}
	if err := d.Start(ctx); err != nil {
		return nil, fmt.Errorf("start daemon: %w", err)
	}
	ch, closeConn, err := s.channel(ctx)
	if err != nil {
		return nil, err
	}
	defer closeConn()
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
