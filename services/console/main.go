// The console is fpmq's web console: one page in a browser that shows what
// the routes' jobs do and lets an operator act (pause and resume a route,
// replay and purge dead letters). services/console/README.md is its manual.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/fpmq/fpmq/services/internal/envhelp"
	"github.com/fpmq/fpmq/services/internal/logging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `Usage: console [healthcheck]

fpmq's web console: the routes' jobs at a glance (done and failed per
minute, ready, running, delayed, dead, paused or not), the dead letters
(list, show, replay, purge) and pausing and resuming a route, behind a
sign-in with an operator and a read-only role. It reads the daemons'
/admin/status and /metrics (CONSOLE_DAEMONS) and the dead-letter queues as
its own RabbitMQ user (AMQP_URL). SIGTERM or SIGINT stops it; running
replays and purges stop where they are, losing nothing.

"console healthcheck" asks a running console's sign-in page on the
loopback interface and exits 0 if it answers, 1 if not: the image has no
other tools for a container health check.

Configuration, from environment variables:
`

// shutdownTimeout bounds the wait for requests in progress on SIGTERM.
const shutdownTimeout = 10 * time.Second

// run is the whole console, main without the process: it serves until ctx
// ends and returns the exit status: 0 after a clean stop, 1 when it could
// not serve, 2 for a bad configuration or argument.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && args[0] == "healthcheck" {
		return healthcheck(ctx, stderr)
	}
	if len(args) > 0 {
		if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
			printUsage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "console: unknown argument %q\n\n", args[0])
		printUsage(stderr)
		return 2
	}
	c, err := loadConfig()
	if err != nil {
		fmt.Fprintf(stderr, "console: configuration: %v\n(see console -h)\n", err)
		return 2
	}
	log, err := logging.New(stderr, c.LogLevel, c.LogFormat)
	if err != nil {
		fmt.Fprintf(stderr, "console: configuration: LOG_LEVEL or LOG_FORMAT: %v\n", err)
		return 2
	}
	if err := serve(ctx, c, log); err != nil {
		log.Error().Err(err).Msg("console stopped")
		return 1
	}
	return 0
}

// serve runs the console until ctx ends, then stops taking requests,
// waits for those in progress and ends the background tasks.
func serve(ctx context.Context, c config, log zerolog.Logger) error {
	dead := newAMQPDead(c)
	defer dead.Close()
	taskCtx, stopTasks := context.WithCancel(context.WithoutCancel(ctx))
	srv, err := newServer(taskCtx, c, newDaemonSource(c.Daemons, c.AdminToken, c.DaemonTimeout, c.CacheTTL), dead, log)
	if err != nil {
		stopTasks()
		return err
	}
	defer srv.tasks.wait()
	defer stopTasks()
	go srv.history.run(taskCtx, srv.daemons)

	l, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("CONSOLE_ADDR: %w", err)
	}
	hs := &http.Server{
		Handler:           srv.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	done := make(chan error, 1)
	go func() {
		if c.TLSCertFile != "" {
			done <- hs.ServeTLS(l, c.TLSCertFile, c.TLSKeyFile)
			return
		}
		done <- hs.Serve(l)
	}()
	log.Info().Str("addr", l.Addr().String()).Bool("tls", c.TLSCertFile != "").Strs("daemons", c.Daemons).
		Int("users", len(srv.users)).Msg("console serving")
	select {
	case err := <-done:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err = hs.Shutdown(shutdown)
	if serveErr := <-done; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	log.Info().Msg("console stopped")
	return err
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, usage)
	if err := envhelp.Print(w, &config{}); err != nil {
		fmt.Fprintf(w, "(%v)\n", err)
	}
}
