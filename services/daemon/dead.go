package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/amqpconfig"
	"github.com/fpmq/fpmq/services/internal/broker"
	"github.com/fpmq/fpmq/services/internal/deadletter"
	"github.com/fpmq/fpmq/services/internal/envhelp"
	"github.com/fpmq/fpmq/services/internal/management"
	"github.com/fpmq/fpmq/services/internal/progress"
	"github.com/fpmq/fpmq/services/internal/queuepolicy"
)

// deadSynopsis is printed after a usage error; deadUsage, for -h, says more.
const deadSynopsis = `Usage: daemon dead list [--reason R] [--job NAME] [--older-than D] [--newer-than D] [--json]
       daemon dead show [--json] ID...
       daemon dead replay (ID... | --all | FILTERS) [--rate N/s] [--queue Q]
       daemon dead purge (ID... | --all | FILTERS) [--yes]
FILTERS: --reason R, --job NAME, --older-than D, --newer-than D. See daemon dead -h.
`

const deadUsage = `Usage: daemon dead ACTION [FLAGS] [ID...]

Operators' commands on the dead-letter queue: the jobs that can never
succeed, kept with the reason, attempts and last failure of each.

  list [--reason R] [--job NAME] [--older-than D] [--newer-than D] [--json]
      One line per dead job, oldest first: message id, job name (the AMQP
      type), reason, attempts, last status, age, last error and the start
      of the payload. --json writes one object per line, whole body
      included. The queue is left as it was: RabbitMQ gets every message
      back, in its place.
  show [--json] ID...
      The whole job: every property, every header, the body.
  replay (ID... | --all | FILTERS) [--rate N/s] [--queue Q]
      Publishes each job back to the queue it came from (its x-fpmq-queue
      header, else --queue), without the x-fpmq-* headers, so that it
      starts again at attempt 1; its dead copy is deleted only once the
      broker confirmed the new one. An interruption loses nothing and
      duplicates at most the one job in flight.
  purge (ID... | --all | FILTERS) [--yes]
      Deletes the jobs for good. Asks first on a terminal; elsewhere it
      needs --yes.

FILTERS are --reason R, --job NAME, --older-than D and --newer-than D; a job
must pass all that are given. Ages D are Go durations or days: 90m, 36h,
7d. Rates: 10/s, 30/m, 100/h. Progress shows on a terminal only.

Every action reads the whole queue and gives back what it does not delete,
and a quorum queue counts each read as a delivery: before it reads, the
command asks RabbitMQ's management API (RABBITMQ_MANAGEMENT_URL) whether a
delivery limit is in effect on a quorum dead-letter queue, which would drop
jobs read too often. If one is, or if it cannot tell, it reads nothing and
exits with status 3, saying why and how to lift the limit.

Exit status: 0 done; 1 not all done, an id not found, or the broker could
not be used; 2 bad arguments or configuration; 3 refused, nothing read: a
delivery limit is in effect on the quorum dead-letter queue, or the
management API could not tell.

Configuration, from environment variables:
`

// deadConfig is the configuration of "daemon dead", read from the
// environment.
type deadConfig struct {
	amqpconfig.Settings // AMQP_URL, AMQP_ADDRESSES and the TLS files
	management.Config   // RABBITMQ_MANAGEMENT_URL

	DeadQueue      string        `envconfig:"DEAD_LETTER_QUEUE" default:"commands.dead" desc:"the dead-letter queue to work on"`
	ConnectTimeout time.Duration `envconfig:"CONNECT_TIMEOUT" default:"10s" desc:"deadline of the connection to RabbitMQ"`
	PublishTimeout time.Duration `envconfig:"PUBLISH_TIMEOUT" default:"30s" desc:"replay: how long the broker may take to confirm one job"`

	tls   *tls.Config        // from AMQP_CA_FILE, AMQP_CERT_FILE and AMQP_KEY_FILE
	nodes []string           // the broker URLs of AMQP_URL and AMQP_ADDRESSES
	api   *management.Client // from RABBITMQ_MANAGEMENT_URL; nil when off
}

// loadDeadConfig reads the configuration from the environment and checks
// it. Every error names the variable at fault.
func loadDeadConfig() (deadConfig, error) {
	var c deadConfig
	if err := envconfig.Process("", &c); err != nil {
		return c, err
	}
	var err error
	if c.nodes, c.tls, err = c.Settings.Check("RABBITMQ_OPERATOR_PASSWORD"); err != nil {
		return c, err
	}
	if c.api, err = c.Config.Client(c.URL, c.tls); err != nil {
		return c, err
	}
	if c.DeadQueue == "" {
		return c, errors.New("DEAD_LETTER_QUEUE: must not be empty")
	}
	if c.ConnectTimeout <= 0 {
		return c, fmt.Errorf("CONNECT_TIMEOUT: must be positive, got %s", c.ConnectTimeout)
	}
	if c.PublishTimeout <= 0 {
		return c, fmt.Errorf("PUBLISH_TIMEOUT: must be positive, got %s", c.PublishTimeout)
	}
	return c, nil
}

// deadCommand runs "daemon dead": args are the arguments after "dead".
// It reads purge's confirmation from stdin, writes results to stdout, and
// errors and, on a terminal, progress to stderr. It returns the exit
// status: 0 done, 1 not (all) done, 2 bad arguments or configuration, 3
// refused before reading (see checkDeadQueue).
func deadCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd, err := parseDeadArgs(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printDeadUsage(stdout)
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "daemon dead: %v\n\n%s", err, deadSynopsis)
		return 2
	}
	prog := "daemon dead " + cmd.Action
	interactive := progress.IsTerminal(stdin) && progress.IsTerminal(stderr)
	if cmd.Action == actionPurge && !cmd.Yes && !interactive {
		fmt.Fprintf(stderr, "%s: not on a terminal, so nobody can confirm: add --yes to delete without asking\n", prog)
		return 2
	}
	cfg, err := loadDeadConfig()
	if err != nil {
		fmt.Fprintf(stderr, "daemon dead: configuration: %v\n(see daemon dead -h)\n", err)
		return 2
	}

	dialCtx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	conn, err := broker.NewCluster(cfg.nodes, cfg.tls).Dial(dialCtx)
	cancel()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v%s\n", prog, err, accessHint(err))
		return 1
	}
	defer conn.CloseDeadline(time.Now().Add(closeTimeout))
	if status := checkDeadQueue(ctx, cfg, prog, stderr); status != 0 {
		return status
	}
	session, err := deadletter.Open(conn, cfg.DeadQueue)
	if err != nil {
		hint := accessHint(err)
		if errors.Is(err, deadletter.ErrQueueNotFound) {
			hint = "\n(the daemon declares it when it starts; is DEAD_LETTER_QUEUE right?)"
		}
		fmt.Fprintf(stderr, "%s: %v%s\n", prog, err, hint)
		return 1
	}

	d := deadRun{cmd: cmd, cfg: cfg, conn: conn, session: session, prog: prog, stdout: stdout, stderr: stderr}
	d.progress = progress.OnTerminal(stderr)
	if interactive && !cmd.Yes {
		d.confirm = askOnTerminal(ctx, stdin, stderr, cfg.DeadQueue)
	}
	return d.run(ctx)
}

const (
	// closeTimeout bounds closing the connection at the end.
	closeTimeout = 5 * time.Second
	// checkTimeout bounds checkDeadQueue: RabbitMQ reports the policies
	// of a queue just created, or of a broker just started, within 5 to
	// 10 s, and the check waits for them.
	checkTimeout = 15 * time.Second
)

// exitRefused is the exit status of an action refused before it read
// anything, because reading could make RabbitMQ drop dead jobs.
const exitRefused = 3

// checkDeadQueue asks the management API whether the dead-letter queue
// may be read: every action gives back what it reads and does not
// delete, and a quorum queue with a delivery limit drops a message given
// back too often. It returns 0 when it may, else the exit status, having
// said why on stderr: exitRefused when a limit is in effect or cannot be
// ruled out, 1 when the queue does not exist. It runs before the session
// opens, so that a refused action reads nothing.
func checkDeadQueue(ctx context.Context, cfg deadConfig, prog string, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	err := queuepolicy.CheckDead(ctx, cfg.api, cfg.DeadQueue)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, management.ErrNotFound):
		fmt.Fprintf(stderr, "%s: queue %q: %v\n(the daemon declares it when it starts; is DEAD_LETTER_QUEUE right?)\n", prog, cfg.DeadQueue, deadletter.ErrQueueNotFound)
		return 1
	}
	fmt.Fprintf(stderr, "%s: refused, nothing was read: %v\n", prog, err)
	return exitRefused
}

// deadRun is one run of an action on an open session. Each action is a
// method that runs it on the session and returns what it did; run closes
// the session and reports.
type deadRun struct {
	cmd      deadArgs
	cfg      deadConfig
	conn     *amqp.Connection
	session  *deadletter.Session
	prog     string
	stdout   io.Writer
	stderr   io.Writer
	progress *progress.Line                       // nil when stderr is not a terminal
	confirm  func([]deadletter.Job) (bool, error) // purge: nil means do not ask
}

// run runs the action, closes the session and reports on stdout and
// stderr; it returns the exit status.
func (d *deadRun) run(ctx context.Context) int {
	action := map[string]func(context.Context, time.Time) (deadletter.Result, error){
		actionList:   d.list,
		actionShow:   d.show,
		actionReplay: d.replay,
		actionPurge:  d.purge,
	}[d.cmd.Action]
	res, err := action(ctx, time.Now())
	// Closing the channel gives back every message not acked, and waits
	// until the broker handled the acks sent before: only then is the
	// count of what was done sure.
	cerr := d.session.Close()
	d.progress.Clear()
	if err == nil {
		err = cerr
	}
	d.warn(res)

	status := 0
	if len(res.Missing) > 0 || res.Failed > 0 {
		status = 1
	}
	if errors.Is(err, deadletter.ErrDeclined) { // only purge asks
		fmt.Fprintf(d.stdout, "purged 0 of %d: not confirmed\n", res.Matched)
		return status
	}
	if !d.summarize(res, err, cerr) {
		status = 1
	}
	queue := d.cfg.DeadQueue
	if errors.Is(err, context.Canceled) {
		fmt.Fprintf(d.stderr, "%s: interrupted; what was not done is still in %s\n", d.prog, queue)
		return 1
	}
	if err != nil {
		if res.Read < res.Total {
			err = fmt.Errorf("%w (read %d of %d messages)", err, res.Read, res.Total)
		}
		fmt.Fprintf(d.stderr, "%s: %v%s\n", d.prog, err, accessHint(err))
		return 1
	}
	return status
}

// list writes a line for each selected job: a table, or JSON.
func (d *deadRun) list(ctx context.Context, now time.Time) (deadletter.Result, error) {
	lw := newListWriter(d.stdout, d.cmd.JSON, now)
	res, err := deadletter.List(ctx, d.session, d.cmd.Filter, now, lw.Write, d.progressOf("reading"))
	if ferr := lw.Flush(); err == nil {
		err = ferr
	}
	return res, err
}

// show writes each selected job whole, a blank line between two.
func (d *deadRun) show(ctx context.Context, now time.Time) (deadletter.Result, error) {
	first := true
	return deadletter.List(ctx, d.session, d.cmd.Filter, now, func(j deadletter.Job) error {
		if !first && !d.cmd.JSON {
			fmt.Fprintln(d.stdout)
		}
		first = false
		return writeShow(d.stdout, j, d.cmd.JSON, now)
	}, d.progressOf("reading"))
}

// replay publishes each selected job back to its queue; a job that could
// not be is said on stderr, and stays dead.
func (d *deadRun) replay(ctx context.Context, now time.Time) (deadletter.Result, error) {
	pub, err := broker.NewPublisher(d.conn)
	if err != nil {
		return deadletter.Result{}, err
	}
	return deadletter.Replay(ctx, d.session, deadletter.ReplayConfig{
		Filter:   d.cmd.Filter,
		Fallback: d.cmd.Queue,
		Rate:     d.cmd.Rate,
		Publish:  d.publishWith(pub),
		Failed: func(j deadletter.Job, err error) {
			d.progress.Clear()
			fmt.Fprintf(d.stderr, "%s: %s not replayed, it stays dead: %v\n", d.prog, jobName(j), err)
		},
		Progress: d.progressOf("replaying"),
		Now:      now,
	})
}

// publishWith returns replay's Publish through pub, each job within
// PUBLISH_TIMEOUT. Call it before the replay starts: it watches pub's
// channel from then on.
func (d *deadRun) publishWith(pub *broker.Publisher) deadletter.Publish {
	pubClosed := pub.NotifyClose(make(chan *amqp.Error, 1))
	return func(ctx context.Context, queue string, msg amqp.Publishing) error {
		ctx, cancel := context.WithTimeout(ctx, d.cfg.PublishTimeout)
		defer cancel()
		err := pub.Publish(ctx, queue, msg)
		select {
		case e, ok := <-pubClosed:
			// The broker closed the channel (a missing permission,
			// say): its reason ends the replay, not just this job.
			if ok && e != nil {
				return fmt.Errorf("publish to %q: channel closed: %w", queue, e)
			}
			return fmt.Errorf("publish to %q: %w", queue, amqp.ErrClosed)
		default:
		}
		return err
	}
}

// purge deletes the selected jobs, once confirmed if it is to ask.
func (d *deadRun) purge(ctx context.Context, now time.Time) (deadletter.Result, error) {
	return deadletter.Purge(ctx, d.session, d.cmd.Filter, now, d.confirmWithProgressCleared(), d.progressOf("purging"))
}

// warn writes to stderr the ids asked for that no message had.
func (d *deadRun) warn(res deadletter.Result) {
	for _, id := range res.Missing {
		fmt.Fprintf(d.stderr, "%s: no dead job with id %q in %s\n", d.prog, id, d.cfg.DeadQueue)
	}
}

// summarize writes the action's closing line, given its error err and
// that of closing the session, cerr. It returns false if fewer jobs were
// replayed or purged than selected.
func (d *deadRun) summarize(res deadletter.Result, err, cerr error) bool {
	queue := d.cfg.DeadQueue
	switch d.cmd.Action {
	case actionList:
		switch {
		case d.cmd.JSON:
		case d.progress != nil:
			fmt.Fprintf(d.stderr, "%d of %d dead jobs in %s\n", res.Matched, res.Read, queue)
		case res.Matched == 0 && err == nil:
			// Say so rather than print nothing, which reads like a failure.
			fmt.Fprintf(d.stderr, "no dead jobs in %s match\n", queue)
		}
	case actionReplay:
		fmt.Fprintf(d.stdout, "replayed %d of %d\n", res.Done, res.Matched)
		return res.Done >= res.Matched
	case actionPurge:
		if cerr != nil && res.Done > 0 {
			fmt.Fprintf(d.stdout, "purge sent %d deletions of %d; some may not have been done\n", res.Done, res.Matched)
		} else {
			fmt.Fprintf(d.stdout, "purged %d of %d\n", res.Done, res.Matched)
		}
		return res.Done >= res.Matched
	}
	return true
}

// progressOf returns the progress callback of an action, which shows a
// line on a terminal and does nothing elsewhere.
func (d *deadRun) progressOf(verb string) deadletter.Progress {
	if d.progress == nil {
		return nil
	}
	return func(r deadletter.Result) {
		switch verb {
		case "replaying":
			d.progress.Update("replayed %d of %d selected, %d of %d messages read", r.Done, r.Matched, r.Read, r.Total)
		case "purging":
			if r.Read < r.Total || r.Done == 0 {
				d.progress.Update("read %d of %d messages, %d selected", r.Read, r.Total, r.Matched)
			} else {
				d.progress.Update("purged %d of %d", r.Done, r.Matched)
			}
		default:
			d.progress.Update("read %d of %d messages", r.Read, r.Total)
		}
	}
}

// confirmWithProgressCleared wraps d.confirm so that its question does not
// share a line with the progress.
func (d *deadRun) confirmWithProgressCleared() func([]deadletter.Job) (bool, error) {
	if d.confirm == nil {
		return nil
	}
	return func(jobs []deadletter.Job) (bool, error) {
		d.progress.Clear()
		return d.confirm(jobs)
	}
}

// askOnTerminal returns purge's confirmation: it lists the selected jobs
// on w (the first few) and reads the answer from in.
func askOnTerminal(ctx context.Context, in io.Reader, w io.Writer, queue string) func([]deadletter.Job) (bool, error) {
	return func(jobs []deadletter.Job) (bool, error) {
		const listed = 10
		if len(jobs) == 1 {
			fmt.Fprintf(w, "This dead job will be deleted from %s for good:\n", queue)
		} else {
			fmt.Fprintf(w, "These %d dead jobs will be deleted from %s for good:\n", len(jobs), queue)
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for i, j := range jobs {
			if i == listed {
				fmt.Fprintf(tw, "  ... and %d more\n", len(jobs)-listed)
				break
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", jobName(j), shorten(j.Reason, 24), shorten(j.Name, 24))
		}
		tw.Flush()
		fmt.Fprint(w, "Delete them? [y/N] ")
		// A read from a terminal cannot be cancelled: the goroutine ends
		// with the answer, or with the process if a signal comes first.
		answer := make(chan string, 1)
		go func() {
			line, _ := bufio.NewReader(in).ReadString('\n')
			answer <- line
		}()
		select {
		case line := <-answer:
			a := strings.ToLower(strings.TrimSpace(line))
			return a == "y" || a == "yes", nil
		case <-ctx.Done():
			fmt.Fprintln(w)
			return false, ctx.Err()
		}
	}
}

// jobName names a job in messages.
func jobName(j deadletter.Job) string {
	if j.ID == "" {
		return "(no message id)"
	}
	return fmt.Sprintf("%q", j.ID)
}

// accessHint explains a refusal by RabbitMQ in terms of the settings.
func accessHint(err error) string {
	if errors.Is(err, amqp.ErrCredentials) {
		return "\n(check the user and password in AMQP_URL; with compose, RABBITMQ_OPERATOR_USER and RABBITMQ_OPERATOR_PASSWORD in .env)"
	}
	if ae := (*amqp.Error)(nil); errors.As(err, &ae) && ae.Code == amqp.AccessRefused {
		return "\n(the user of AMQP_URL needs read on DEAD_LETTER_QUEUE and write on the default exchange amq.default)"
	}
	return ""
}

func printDeadUsage(w io.Writer) {
	fmt.Fprint(w, deadUsage)
	if err := envhelp.Print(w, &deadConfig{}); err != nil {
		fmt.Fprintf(w, "(%v)\n", err)
	}
}
