package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/broker"
	"github.com/fpmq/fpmq/services/internal/job"
)

// Exit statuses of run.
const (
	exitOK      = 0 // every job was confirmed
	exitFailure = 1 // some job was not confirmed
	exitUsage   = 2 // bad arguments, input or configuration: nothing was published
)

// maxOutstanding bounds the jobs published but not yet confirmed. Waiting
// for confirms only when the window is full costs one round trip per window
// rather than per job, and keeps memory bounded for large inputs.
const maxOutstanding = 4096

// config is the caller's configuration, read from the environment only.
type config struct {
	URL     string        `envconfig:"AMQP_URL" required:"true" desc:"RabbitMQ URL, e.g. amqp://user:pass@rabbitmq:5672/"`
	Queue   string        `envconfig:"AMQP_QUEUE" default:"commands" desc:"durable queue that the jobs are published to"`
	Timeout time.Duration `envconfig:"CALLER_TIMEOUT" default:"10s" desc:"bound on connecting plus waiting for all publisher confirms"`
}

// usageError is a mistake in the arguments, standard input or environment.
// run answers it with exit status 2 and the usage text, without connecting.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// run is the whole caller; main only wires it to the process. It checks all
// the input and the configuration before it connects, publishes one job
// {"number":N} per number with publisher confirms, and prints
// " [x] Message sent: N" for each job once the broker has confirmed it. It
// returns the exit status: 0 when every job was confirmed, 1 when some job
// was not, 2 for a usage error (then nothing was published).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if slices.ContainsFunc(args, isHelp) {
		printUsage(stdout)
		return exitOK
	}
	numbers, err := parseInput(args, stdin)
	var cfg config
	if err == nil {
		cfg, err = loadConfig()
	}
	if ue := (*usageError)(nil); errors.As(err, &ue) {
		fmt.Fprintf(stderr, "caller: %v\n\n", err)
		printUsage(stderr)
		return exitUsage
	}
	if err == nil {
		err = publish(ctx, cfg, numbers, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "caller: %v\n", err)
		return exitFailure
	}
	return exitOK
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help"
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  caller NUMBER...   publish a job {"number":NUMBER} for each NUMBER
  caller -           publish a job for each line of standard input, one number a line

Every NUMBER must be a base-10 integer within int64, and all of them are checked
before anything is published. " [x] Message sent: NUMBER" is printed once the
broker has confirmed that job. Exit status: 0 when every job was confirmed,
1 when some job was not, 2 for a usage error.

`)
	tw := tabwriter.NewWriter(w, 1, 0, 4, ' ', 0)
	if err := envconfig.Usagef("", &config{}, tw, envconfig.DefaultTableFormat); err != nil {
		fmt.Fprintf(tw, "(cannot list the environment variables: %v)\n", err)
	}
	tw.Flush()
}

// parseInput returns the numbers to publish: one per argument, or one per
// line of stdin when the only argument is "-" (a trailing '\r' on a line is
// ignored). It reads all of stdin, so that nothing is published unless every
// number is valid. Bad input is a *usageError that names the value and where
// it came from; only a failure to read stdin is not.
func parseInput(args []string, stdin io.Reader) ([]int64, error) {
	if len(args) == 0 {
		return nil, usagef("no numbers given")
	}
	if len(args) == 1 && args[0] == "-" {
		return readNumbers(stdin)
	}
	numbers := make([]int64, len(args))
	for i, arg := range args {
		if arg == "-" {
			return nil, usagef(`"-" (read standard input) must be the only argument (argument %d)`, i+1)
		}
		n, err := parseNumber(arg, "argument", i+1)
		if err != nil {
			return nil, err
		}
		numbers[i] = n
	}
	return numbers, nil
}

// readNumbers reads one number per line from r.
func readNumbers(r io.Reader) ([]int64, error) {
	var numbers []int64
	sc := bufio.NewScanner(r)
	line := 0
	// bufio.ScanLines already drops the '\r' of a "\r\n" line end, and of
	// a last line without '\n'.
	for sc.Scan() {
		line++
		n, err := parseNumber(sc.Text(), "stdin line", line)
		if err != nil {
			return nil, err
		}
		numbers = append(numbers, n)
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		return nil, usagef("invalid number (stdin line %d): line too long", line+1)
	} else if err != nil {
		return nil, fmt.Errorf("read standard input: %w", err)
	}
	if line == 0 {
		return nil, usagef("no numbers on standard input")
	}
	return numbers, nil
}

// parseNumber parses s as a base-10 int64; where and index say where s came
// from, for the error.
func parseNumber(s, where string, index int) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, usagef("invalid number %q (%s %d): out of the int64 range", clip(s), where, index)
	}
	if err != nil {
		return 0, usagef("invalid number %q (%s %d)", clip(s), where, index)
	}
	return n, nil
}

// clip shortens s for an error message.
func clip(s string) string {
	const limit = 40
	if len(s) > limit {
		return s[:limit] + "..."
	}
	return s
}

// loadConfig reads the configuration from the environment. Every mistake in
// it is a *usageError that names the variable.
func loadConfig() (config, error) {
	var cfg config
	if err := envconfig.Process("", &cfg); err != nil {
		return cfg, usagef("configuration: %v", err)
	}
	if cfg.URL == "" {
		return cfg, usagef("configuration: AMQP_URL is empty")
	}
	if _, err := amqp.ParseURI(cfg.URL); err != nil {
		// A url.Error quotes the whole URL, password included.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return cfg, usagef("configuration: AMQP_URL %s is not an AMQP URL: %v", broker.Redact(cfg.URL), err)
	}
	if cfg.Queue == "" {
		return cfg, usagef("configuration: AMQP_QUEUE is empty")
	}
	if cfg.Timeout <= 0 {
		return cfg, usagef("configuration: CALLER_TIMEOUT must be positive, not %s", cfg.Timeout)
	}
	return cfg, nil
}

// publish connects to the broker, declares the queue and publishes a job for
// each number, with at most maxOutstanding of them unconfirmed at a time. It
// prints each job that the broker confirmed, in order, and returns an error
// unless the broker confirmed them all within cfg.Timeout.
func publish(ctx context.Context, cfg config, numbers []int64, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	conn, err := broker.Dial(ctx, cfg.URL)
	if err != nil {
		return explain(ctx, cfg.Timeout, err)
	}
	// When ctx ends, closing the socket at once is the only way to interrupt
	// a write that the broker does not read or a call it does not answer.
	stop := context.AfterFunc(ctx, func() { conn.CloseDeadline(time.Now()) })
	defer func() {
		stop()
		// Whether closing works changes nothing about what was confirmed.
		deadline, _ := ctx.Deadline()
		conn.CloseDeadline(deadline)
	}()

	ch, err := conn.Channel()
	if err != nil {
		return explain(ctx, cfg.Timeout, fmt.Errorf("open channel: %w", err))
	}
	defer ch.Close()
	// explain runs before the deferred closing, which may take until the
	// deadline and must not turn another failure into a timeout.
	return explain(ctx, cfg.Timeout, publishOn(ctx, ch, cfg.Queue, numbers, stdout))
}

// explain adds to err what ended ctx, if anything. The clock decides a
// timeout: the socket deadline that broker.Dial sets can fire just before ctx
// records its own, and the library then reports a plain *amqp.Error.
func explain(ctx context.Context, timeout time.Duration, err error) error {
	deadline, _ := ctx.Deadline()
	switch {
	case err == nil:
		return nil
	case !time.Now().Before(deadline):
		return fmt.Errorf("timed out after %s (CALLER_TIMEOUT): %w", timeout, err)
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted: %w", err)
	}
	return err
}

// publishOn declares the queue on ch, puts ch in confirm mode and publishes
// the jobs.
func publishOn(ctx context.Context, ch *amqp.Channel, queue string, numbers []int64, stdout io.Writer) error {
	if _, err := broker.DeclareQueue(ch, queue); err != nil {
		return err
	}
	if err := ch.Confirm(false /* noWait */); err != nil {
		return fmt.Errorf("enable publisher confirms: %w", err)
	}
	window := min(len(numbers), maxOutstanding)
	p := &publisher{
		ch:     ch,
		queue:  queue,
		stdout: stdout,
		// The library blocks its reader on a full returns channel (and
		// drops the return after 5 s). The broker sends a return before
		// the confirm of the same job, and await drains the channel after
		// each confirm, so it never holds more returns than there are
		// unconfirmed jobs: the window.
		returns:  ch.NotifyReturn(make(chan amqp.Return, window)),
		returned: make(map[string]amqp.Return),
		closes:   ch.NotifyClose(make(chan *amqp.Error, 1)),
	}
	return p.publishAll(ctx, numbers, window)
}

// publisher publishes jobs on a channel in confirm mode and tells which ones
// the broker took.
type publisher struct {
	ch     *amqp.Channel
	queue  string
	stdout io.Writer

	returns  chan amqp.Return       // jobs the broker could not route
	returned map[string]amqp.Return // returns not yet matched to their job, by message ID
	closes   chan *amqp.Error       // why the channel closed
	closeErr error                  // what came from closes
}

// pending is a job published and not yet confirmed.
type pending struct {
	number int64
	id     string
	dc     *amqp.DeferredConfirmation
}

// publishAll publishes a job for each number, keeping at most window of them
// unconfirmed. After the first failure it publishes no more jobs but still
// waits for the ones already published, so that every confirmed job is
// reported as sent.
func (p *publisher) publishAll(ctx context.Context, numbers []int64, window int) error {
	ring := make([]pending, window)
	var first error
	published, awaited, confirmed := 0, 0, 0
	awaitOldest := func() {
		if err := p.await(ctx, ring[awaited%window]); err == nil {
			confirmed++
		} else if first == nil {
			first = err
		}
		awaited++
	}
	for _, n := range numbers {
		if published-awaited == window {
			awaitOldest()
		}
		if first != nil {
			break
		}
		m, err := p.publish(ctx, n)
		if err != nil {
			first = err
			break
		}
		ring[published%window] = m
		published++
	}
	for awaited < published {
		awaitOldest()
	}
	if first != nil {
		return fmt.Errorf("%w (%d of %d jobs confirmed)", first, confirmed, len(numbers))
	}
	return nil
}

// publish publishes the job for n, persistent and mandatory.
func (p *publisher) publish(ctx context.Context, n int64) (pending, error) {
	id := newMessageID()
	dc, err := p.ch.PublishWithDeferredConfirmWithContext(ctx,
		"",      // the default exchange, which routes by queue name
		p.queue, // routing key
		true,    // mandatory: return the job if no queue takes it
		false,   // immediate
		amqp.Publishing{
			DeliveryMode: amqp.Persistent,
			ContentType:  broker.ContentType,
			MessageId:    id,
			Timestamp:    time.Now(),
			Body:         job.Marshal(n),
		},
	)
	if err != nil {
		return pending{}, fmt.Errorf("publish %d: %w", n, err)
	}
	return pending{number: n, id: id, dc: dc}, nil
}

// await waits for the broker's confirm of m and prints m as sent if the
// broker took it. Otherwise it returns why not: the broker returned or
// nacked m, or the channel closed or ctx ended first.
func (p *publisher) await(ctx context.Context, m pending) error {
	select {
	case <-m.dc.Done():
	case <-ctx.Done():
		// A confirm that came in as ctx ended still counts.
		select {
		case <-m.dc.Done():
		default:
			return fmt.Errorf("wait for the confirm of %d: %w", m.number, ctx.Err())
		}
	}
	p.drainReturns()
	if r, ok := p.returned[m.id]; ok {
		delete(p.returned, m.id)
		return fmt.Errorf("broker returned %d as unroutable: %d %s", m.number, r.ReplyCode, r.ReplyText)
	}
	if !m.dc.Acked() {
		// The library also completes a confirm, as not acked, when the
		// channel closes; ending ctx closes it too.
		if ctx.Err() != nil {
			return fmt.Errorf("wait for the confirm of %d: %w", m.number, ctx.Err())
		}
		if err := p.closed(); err != nil {
			return fmt.Errorf("%d not confirmed: channel closed: %w", m.number, err)
		}
		return fmt.Errorf("broker nacked %d", m.number)
	}
	fmt.Fprintf(p.stdout, " [x] Message sent: %d\n", m.number)
	return nil
}

// drainReturns moves the returns received so far into p.returned.
func (p *publisher) drainReturns() {
	for {
		select {
		case r, ok := <-p.returns:
			if !ok {
				p.returns = nil // a nil channel is never ready
				return
			}
			p.returned[r.MessageId] = r
		default:
			return
		}
	}
}

// closed returns why the channel closed, or nil if it is open.
func (p *publisher) closed() error {
	if p.closeErr == nil {
		select {
		case e, ok := <-p.closes:
			if ok && e != nil {
				p.closeErr = e
			} else {
				p.closeErr = amqp.ErrClosed
			}
		default:
		}
	}
	return p.closeErr
}

// newMessageID returns a random 128-bit ID in hex.
func newMessageID() string {
	var b [16]byte
	rand.Read(b[:]) // crypto/rand.Read never fails: it crashes the program instead
	return hex.EncodeToString(b[:])
}
