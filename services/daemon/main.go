// The daemon consumes jobs from RabbitMQ and runs each one on a php-fpm pool
// over FastCGI. services/daemon/README.md is its manual.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/fpmq/fpmq/services/internal/envhelp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	// After the first signal starts a graceful shutdown, a second one takes
	// the default action and ends the process at once.
	context.AfterFunc(ctx, stop)
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// command runs one subcommand: args are the arguments after its name. It
// returns the process exit status.
type command func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int

// commands returns the subcommands by name.
func commands() map[string]command {
	help := func(_ context.Context, _ []string, _ io.Reader, stdout, _ io.Writer) int {
		printUsage(stdout)
		return 0
	}
	ops := func(name string) command {
		return func(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
			return opsCommand(ctx, name, args, stdout, stderr)
		}
	}
	return map[string]command{
		"-h":          help,
		"-help":       help,
		"--help":      help,
		"help":        help,
		"healthcheck": healthcheck,
		"pause":       ops("pause"),
		"resume":      ops("resume"),
		"status":      ops("status"),
		"dead":        deadCommand,
	}
}

// run is the whole daemon, main without the process: without arguments it
// consumes jobs until ctx ends (see serve); otherwise it runs the
// subcommand that args name. It returns the process exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return serve(ctx, stderr)
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "daemon: unknown argument %q\n\n", args[0])
		printUsage(stderr)
		return 2
	}
	return cmd(ctx, args[1:], stdin, stdout, stderr)
}

const usage = `Usage: daemon [healthcheck [live|ready] | pause [--reason TEXT] | resume | status [--json] | dead COMMAND ...]

Consumes jobs from a RabbitMQ queue and runs each one on a php-fpm pool over
FastCGI. A job is acknowledged once the worker answered 2xx; a failed attempt
is retried later through a retry queue, up to MAX_ATTEMPTS; a job that can
never succeed goes to the dead-letter queue. SIGTERM or SIGINT stops taking
jobs and waits for the running ones.

"daemon healthcheck" asks a running daemon's /readyz (or /healthz with
"live") on METRICS_ADDR and exits 0 if it is ready, 1 if not: the image has
no other tools for a container health check.

"daemon pause", "daemon resume" and "daemon status" ask a running daemon
to stop taking jobs, to take them again, and how its queues stand: see
"daemon status -h".

"daemon dead list|show|replay|purge" works on the dead-letter queue: see
"daemon dead -h".

Configuration, from environment variables:
`

func printUsage(w io.Writer) {
	fmt.Fprint(w, usage)
	if err := envhelp.Print(w, &config{}); err != nil {
		fmt.Fprintf(w, "(%v)\n", err)
	}
}
