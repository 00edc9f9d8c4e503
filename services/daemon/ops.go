package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/fpmq/fpmq/services/internal/admin"
	"github.com/fpmq/fpmq/services/internal/envhelp"
)

// opsSynopsis is printed after a usage error; opsUsage, for -h, says more.
const opsSynopsis = `Usage: daemon pause [--reason TEXT] [--wait] [--addr HOST:PORT]
       daemon resume [--addr HOST:PORT]
       daemon status [--json] [--addr HOST:PORT]
See daemon status -h.
`

const opsUsage = `Usage: daemon pause [--reason TEXT] [--wait] [--addr HOST:PORT]
       daemon resume [--addr HOST:PORT]
       daemon status [--json] [--addr HOST:PORT]

Operators' commands to a running daemon, through its admin endpoints on
METRICS_ADDR.

  pause [--reason TEXT] [--wait]
      Stop taking jobs, say before a database migration or during an
      incident: the daemon cancels its subscription, puts the jobs it holds
      but has not started back in the queue, and lets the running ones
      finish; then it holds none. It stays paused, across reconnections to
      RabbitMQ but not across a restart, until "daemon resume". Pausing a
      paused daemon changes nothing. /readyz answers 503 "paused by
      operator: TEXT". --wait returns once no job runs any more.
  resume
      Take jobs again. A daemon also paused because php-fpm is unavailable
      stays paused until the pool answers.
  status [--json]
      The daemon's queue: jobs ready, unacknowledged (held by this daemon),
      waiting in each retry queue, delayed (waiting in the delay queues),
      dead, its consumers, and the rates of succeeded and failed jobs over
      the last minute, from RabbitMQ's figures and the daemon's own: a
      table, or JSON.

Without --addr the commands ask the daemon on this host, at METRICS_ADDR on
the loopback interface, which needs no token; with compose:
  docker compose exec daemon /daemon pause --reason "db migration"
--addr HOST:PORT asks a daemon elsewhere (another container of the compose
network, say), which accepts the request only with its ADMIN_TOKEN: set
ADMIN_TOKEN to the same value here.

Exit status: 0 done (also when there was nothing to do); 1 the daemon could
not be asked, or refused; 2 bad arguments.

Configuration, from environment variables:
`

// opsConfig is the configuration of the operators' commands, read from
// the environment.
type opsConfig struct {
	MetricsAddr string `envconfig:"METRICS_ADDR" default:":9090" desc:"the daemon's METRICS_ADDR, asked on the loopback interface unless --addr is given"`
	AdminToken  string `envconfig:"ADMIN_TOKEN" desc:"the daemon's ADMIN_TOKEN, sent as a bearer token: needed with --addr"`
}

// Timings of the commands.
const (
	opsRequestTimeout = 15 * time.Second       // one request; a status asks RabbitMQ within 10s
	opsWaitEvery      = 250 * time.Millisecond // how often pause --wait asks
)

// opsCommand runs "daemon pause", "daemon resume" or "daemon status": args
// are the arguments after the command's name. It returns the exit status.
func opsCommand(ctx context.Context, name string, args []string, stdout, stderr io.Writer) int {
	prog := "daemon " + name
	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are printed below, with the synopsis
	addr := fs.String("addr", "", "HOST:PORT of the daemon's admin endpoints")
	var reason *string
	var wait, asJSON *bool
	switch name {
	case "pause":
		reason = fs.String("reason", "", "why, shown by /readyz, status and the log")
		wait = fs.Bool("wait", false, "return once no job runs any more")
	case "status":
		asJSON = fs.Bool("json", false, "write JSON")
	}
	err := fs.Parse(args)
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		printOpsUsage(stdout)
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\n\n%s", prog, err, opsSynopsis)
		return 2
	}

	var cfg opsConfig
	if err := envconfig.Process("", &cfg); err != nil {
		fmt.Fprintf(stderr, "%s: configuration: %v\n", prog, err)
		return 2
	}
	url, err := adminURL(*addr, cfg.MetricsAddr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 2
	}
	o := opsRun{
		client: &admin.Client{URL: url, Token: cfg.AdminToken},
		prog:   prog,
		remote: *addr != "",
		stdout: stdout,
		stderr: stderr,
	}
	switch name {
	case "pause":
		return o.pause(ctx, *reason, *wait)
	case "resume":
		return o.resume(ctx)
	default:
		return o.status(ctx, *asJSON)
	}
}

// adminURL returns the URL of the daemon's admin endpoints: at addr if
// given, else at METRICS_ADDR on the loopback interface.
func adminURL(addr, metricsAddr string) (string, error) {
	if addr != "" {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host == "" || port == "" {
			return "", fmt.Errorf("--addr %q: want HOST:PORT", addr)
		}
		return "http://" + addr, nil
	}
	if metricsAddr == "" {
		return "", errors.New("METRICS_ADDR is empty: the daemon serves no admin endpoints (or give --addr)")
	}
	return loopbackURL(metricsAddr)
}

// loopbackURL returns the URL of a daemon listening on metricsAddr, asked
// from the same host: on the loopback interface when it listens on all.
func loopbackURL(metricsAddr string) (string, error) {
	host, port, err := net.SplitHostPort(metricsAddr)
	if err != nil {
		return "", fmt.Errorf("METRICS_ADDR %q: %w", metricsAddr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// opsRun is one run of an operator's command.
type opsRun struct {
	client *admin.Client
	prog   string
	remote bool // --addr given
	stdout io.Writer
	stderr io.Writer
}

func (o *opsRun) pause(ctx context.Context, reason string, wait bool) int {
	p, err := o.call(ctx, func(ctx context.Context) (admin.Pause, error) { return o.client.Pause(ctx, reason) })
	if err != nil {
		return o.fail(err)
	}
	if p.Changed {
		fmt.Fprintf(o.stdout, "paused%s\n", reasonSuffix(p.Reason))
	} else {
		fmt.Fprintf(o.stdout, "already paused since %s%s\n", p.Since.Local().Format(time.DateTime), reasonSuffix(p.Reason))
	}
	if p.PoolPause != "" {
		fmt.Fprintf(o.stdout, "also paused because php-fpm is unavailable: %s\n", p.PoolPause)
	}
	if !wait {
		if p.Running > 0 {
			fmt.Fprintf(o.stdout, "%s still running: they finish, nothing new starts\n", jobs(p.Running))
		}
		return 0
	}
	for p.Running > 0 || p.Held > 0 {
		select {
		case <-ctx.Done():
			fmt.Fprintf(o.stderr, "%s: interrupted while %s ran; the daemon stays paused\n", o.prog, jobs(p.Running))
			return 1
		case <-time.After(opsWaitEvery):
		}
		if p, err = o.call(ctx, o.client.PauseState); err != nil {
			return o.fail(err)
		}
		if !p.Paused {
			fmt.Fprintf(o.stderr, "%s: resumed by someone else while waiting\n", o.prog)
			return 1
		}
	}
	fmt.Fprintln(o.stdout, "no job running")
	return 0
}

func (o *opsRun) resume(ctx context.Context) int {
	p, err := o.call(ctx, o.client.Resume)
	if err != nil {
		return o.fail(err)
	}
	switch {
	case !p.Changed:
		fmt.Fprintln(o.stdout, "not paused by an operator: nothing to resume")
	case p.PoolPause != "":
		fmt.Fprintf(o.stdout, "resumed; still paused until php-fpm answers: %s\n", p.PoolPause)
	default:
		fmt.Fprintln(o.stdout, "resumed")
	}
	return 0
}

func (o *opsRun) status(ctx context.Context, asJSON bool) int {
	ctx, cancel := context.WithTimeout(ctx, opsRequestTimeout)
	defer cancel()
	st, err := o.client.Status(ctx)
	if err != nil {
		return o.fail(err)
	}
	if asJSON {
		enc := json.NewEncoder(o.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(st); err != nil {
			return o.fail(err)
		}
		return 0
	}
	writeStatus(o.stdout, st, time.Now())
	return 0
}

// call runs one request within the request timeout.
func (o *opsRun) call(ctx context.Context, f func(context.Context) (admin.Pause, error)) (admin.Pause, error) {
	ctx, cancel := context.WithTimeout(ctx, opsRequestTimeout)
	defer cancel()
	return f(ctx)
}

// fail reports err with a hint, and returns exit status 1.
func (o *opsRun) fail(err error) int {
	hint := ""
	switch {
	case errors.Is(err, admin.ErrRefused) && o.remote:
		hint = "\n(set ADMIN_TOKEN to the daemon's own, or run the command where the daemon runs: docker compose exec daemon /daemon ...)"
	case errors.Is(err, admin.ErrRefused):
		hint = "\n(the daemon does not see this request as coming from its loopback interface: set ADMIN_TOKEN to the daemon's own)"
	case errors.Is(err, context.Canceled):
		hint = "\n(interrupted)"
	default:
		if ne := (*net.OpError)(nil); errors.As(err, &ne) {
			hint = "\n(is the daemon running, with METRICS_ADDR as here? Give --addr HOST:PORT for one elsewhere)"
		}
	}
	fmt.Fprintf(o.stderr, "%s: %v%s\n", o.prog, err, hint)
	return 1
}

func reasonSuffix(reason string) string {
	if reason == "" {
		return ""
	}
	return " (reason: " + reason + ")"
}

func jobs(n int64) string {
	if n == 1 {
		return "1 job"
	}
	return fmt.Sprintf("%d jobs", n)
}

// writeStatus writes the status as a table, one row per route, with notes
// on pauses and the broker's figures below it.
func writeStatus(w io.Writer, st admin.Status, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE\tSTATE\tREADY\tUNACKED\tRETRY\tDELAYED\tDEAD\tCONSUMERS\tSUCCEEDED/S\tFAILED/S")
	for _, r := range st.Routes {
		retry := make([]string, len(r.Retry))
		for i, q := range r.Retry {
			retry[i] = q.Delay + ":" + figure(q.Ready)
		}
		if len(retry) == 0 {
			retry = []string{"-"}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%.2f\t%.2f\n",
			r.Queue, routeState(r), figure(r.Ready), r.Unacked, strings.Join(retry, " "),
			figure(r.Delayed), figure(r.Dead), figure(r.Consumers), r.SucceededPerSecond, r.FailedPerSecond)
	}
	tw.Flush()
	for _, r := range st.Routes {
		if r.Paused {
			fmt.Fprintf(w, "%s: paused by operator since %s (%s ago)%s\n", r.Queue, r.Since.Local().Format(time.DateTime),
				now.Sub(r.Since).Round(time.Second), reasonSuffix(r.Reason))
		}
		if r.PoolPause != "" {
			fmt.Fprintf(w, "%s: paused because php-fpm is unavailable: %s\n", r.Queue, r.PoolPause)
		}
		if r.Running > 0 {
			fmt.Fprintf(w, "%s: %s running\n", r.Queue, jobs(r.Running))
		}
	}
	if len(st.Routes) > 0 {
		fmt.Fprintf(w, "UNACKED counts the deliveries this daemon holds; rates are this daemon's over the last %s; DELAYED sums the delay queues.\n",
			time.Duration(st.Routes[0].RateSeconds*float64(time.Second)).Round(time.Second))
	}
	if st.BrokerError != "" {
		fmt.Fprintf(w, "RabbitMQ: %s\n", st.BrokerError)
	}
}

// routeState names a route's state in the table.
func routeState(r admin.Route) string {
	switch {
	case r.Paused:
		return "paused by operator"
	case r.PoolPause != "":
		return "paused: php-fpm"
	default:
		return r.State
	}
}

// figure writes a figure from RabbitMQ, "n/a" when there is none.
func figure(n *int) string {
	if n == nil {
		return "n/a"
	}
	return strconv.Itoa(*n)
}

func printOpsUsage(w io.Writer) {
	fmt.Fprint(w, opsUsage)
	if err := envhelp.Print(w, &opsConfig{}); err != nil {
		fmt.Fprintf(w, "(%v)\n", err)
	}
}
