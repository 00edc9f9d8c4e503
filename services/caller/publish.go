package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/backoff"
	"github.com/fpmq/fpmq/services/internal/broker"
	"github.com/fpmq/fpmq/services/internal/outcome"
	"github.com/fpmq/fpmq/services/internal/progress"
)

// maxOutstanding bounds the jobs published but not yet confirmed. Waiting
// for confirms only when the window is full costs one round trip per window
// rather than per job, and keeps memory bounded for large inputs.
const maxOutstanding = 4096

// reconnectBackoff paces reconnection attempts: the first pause is short,
// as a broker that restarts is back within seconds, and they stay short, as
// the whole run must fit in CALLER_TIMEOUT.
var reconnectBackoff = backoff.Policy{Initial: 100 * time.Millisecond, Max: 2 * time.Second, Factor: 2}

// clockOption changes how a run waits on the clock. Only tests pass any,
// to run on a faster clock than the production one. (Not to be confused
// with options, the flags of the jobs.)
type clockOption func(*sender)

// withPause makes a run pause between reconnection attempts with pause
// instead of backoff.Sleep. pause(ctx, d) waits d, or less, and reports
// whether ctx is still going; d is reconnectBackoff's delay.
func withPause(pause func(ctx context.Context, d time.Duration) bool) clockOption {
	return func(s *sender) { s.pause = pause }
}

// progressLine is where a run shows how far it has got: a *progress.Line,
// whose methods do nothing on a nil one, or a test's recorder.
type progressLine interface {
	Update(format string, args ...any)
	Clear()
}

// publish publishes each job of in, with at most maxOutstanding of
// them unconfirmed at a time, and prints each job that the broker confirmed,
// once, in input order. It returns an error unless the broker confirmed them
// all within cfg.Timeout.
//
// A lost connection does not end the run: publish connects again, to the
// next node of AMQP_ADDRESSES if there are several (broker.Cluster), declares
// the queue again and publishes every job that was not confirmed again, with
// the message ID, timestamp and body of its first publishing, so that a
// consumer can recognise a duplicate. A nack, a return, or a channel that
// the broker closed are final: another connection would meet them again.
// After the first final failure publish starts nothing new, neither a
// publish nor a connection, but still waits for the jobs already published,
// so that every confirmed job is reported.
//
// A job whose confirm was not received when the connection was lost may or
// may not be queued; it is published again, so delivery is at least once:
// a consumer sees a duplicate by its message ID. Publishing again through
// another node is as safe as through the same one: the nodes of a cluster
// share the queue (a quorum queue is replicated; a classic queue lives on
// one node, and while that node is down declaring it fails, which is final
// and reported, not a silent loss).
//
// The first connection is not retried: a broker that cannot be reached at
// all (each node tried once) is misconfigured more often than it is
// restarting, and saying so at once beats saying it at the deadline.
//
// It shows its progress on prog (a nil *progress.Line shows none) and
// returns how many jobs the broker confirmed. clock, which only tests pass,
// changes how it waits.
func publish(ctx context.Context, cfg config, in input, stdout io.Writer, prog progressLine, clock ...clockOption) (confirmed int, err error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	labels := make([]string, len(in.jobs))
	for i, j := range in.jobs {
		labels[i] = j.label
	}
	s := &sender{
		cfg:     cfg,
		cluster: broker.NewCluster(cfg.nodes, cfg.tls),
		jobs:    in.jobs,
		opts:    in.opts,
		window:  min(len(in.jobs), maxOutstanding),
		out:     &reporter{w: stdout, labels: labels, held: make(map[int]bool)},
		prog:    prog,
		pause:   backoff.Sleep,
		spans:   newJobSpans(cfg.tracer, cfg.parent, cfg.Queue),
	}
	if in.opts.ids {
		s.out.ids = make([]string, len(in.jobs))
	}
	for _, o := range clock {
		o(s)
	}
	if progress.IsTerminal(stdout) {
		// The same screen: a job's line must not land after the progress.
		s.out.before = prog.Clear
	} else {
		// A pipe or a file: one write per 64 KiB of lines, not per job.
		s.out.buffer(64 << 10)
	}
	err = s.run(ctx)
	s.spans.endAll()
	prog.Clear()
	s.out.finish()
	return s.out.confirmed, err
}

// message is one job and the publishing that carries it. The publishing is
// built once, so that every attempt sends the same message, due at the
// same time.
type message struct {
	index int    // in the input
	label string // what the report and errors call it
	queue string // the routing key: the job queue, or a delay queue
	pub   amqp.Publishing
}

// newMessage builds the message of job p, the index-th of the input, with
// the options o. A delay of a second or more sends it to the delay queue of
// the largest power of two seconds not above it (and DELAY_MAX); the daemon
// sends it on through the shorter ones until it is due. Any delay is
// written in outcome.HeaderDue, which the daemon checks before it runs the
// job.
func newMessage(cfg config, index int, p payload, o options) message {
	now := time.Now()
	m := message{index: index, label: p.label, queue: cfg.Queue, pub: amqp.Publishing{
		DeliveryMode: amqp.Persistent,
		ContentType:  broker.ContentType,
		MessageId:    newMessageID(),
		Timestamp:    now,
		Type:         o.jobType,
		Priority:     o.priority,
		Body:         p.body,
	}}
	// The AMQP timestamp has whole seconds; the daemon measures a job's
	// wait in the queue from this header's milliseconds.
	m.pub.Headers = make(amqp.Table, len(o.headers)+2)
	maps.Copy(m.pub.Headers, o.headers)
	m.pub.Headers[outcome.HeaderTimestampMs] = now.UnixMilli()
	if o.delay > 0 {
		m.pub.Headers[outcome.HeaderDue] = now.Add(o.delay).UnixMilli()
		if d, ok := broker.DelayBucket(o.delay, cfg.DelayMax); ok {
			m.queue = broker.DelayQueue(cfg.Queue, d)
		}
	}
	return m
}

// newMessageID returns a random 128-bit ID in hex.
func newMessageID() string {
	var b [16]byte
	rand.Read(b[:]) // crypto/rand.Read never fails: it crashes the program instead
	return hex.EncodeToString(b[:])
}

// sender publishes the jobs over as many connections as it takes.
type sender struct {
	cfg     config
	cluster *broker.Cluster // dials the next node after one was lost
	jobs    []payload
	opts    options
	window  int // most jobs unconfirmed at a time
	out     *reporter
	prog    progressLine                                    // a nil *progress.Line: no progress shown
	pause   func(ctx context.Context, d time.Duration) bool // before a reconnection attempt: backoff.Sleep unless a test sets it

	spans *jobSpans // one span per job, its context in the job's headers

	next   int       // index of the first job never published
	retry  []message // published on a lost connection and not confirmed, in input order
	failed error     // the first final failure
}

// run publishes every job. Its error is the one run reports: see outcome.
func (s *sender) run(ctx context.Context) error {
	l, err := dial(ctx, s.cluster)
	if err != nil {
		return s.outcome(ctx, err)
	}
	attempt := 0 // reconnection attempts in the current outage
	for {
		confirmed := s.out.confirmed
		lost, err := s.session(ctx, l)
		if !lost {
			// The outcome is settled before closing, which may take until
			// the deadline and must not turn another failure into a timeout.
			err = s.outcome(ctx, err)
			l.close(ctx, true)
			return err
		}
		l.close(ctx, false)
		if s.out.confirmed > confirmed {
			attempt = 0 // the broker was working: this is a new outage
		}
		if l, err = s.reconnect(ctx, err, &attempt); err != nil {
			return s.outcome(ctx, err)
		}
	}
}

// outcome turns err, which ended the run, into the error run reports: with
// what ended ctx, if anything. (run adds how many jobs were confirmed.)
func (s *sender) outcome(ctx context.Context, err error) error {
	return explain(ctx, s.cfg.Timeout, err)
}

// showProgress updates the progress line, if there is one.
func (s *sender) showProgress() {
	s.prog.Update("%d of %d jobs confirmed, %d published", s.out.confirmed, len(s.jobs), s.next)
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

// reconnect connects again after the connection was lost as cause says,
// pausing reconnectBackoff.Delay(*attempt) (s.pause) before each attempt
// and counting it in *attempt. When ctx ends it gives up with the last
// error that ctx did not cause: the loss, or why the last attempt failed.
func (s *sender) reconnect(ctx context.Context, cause error, attempt *int) (*link, error) {
	for {
		s.prog.Update("connection lost, reconnecting: %d of %d jobs confirmed", s.out.confirmed, len(s.jobs))
		s.out.flush()
		if !s.pause(ctx, reconnectBackoff.Delay(*attempt)) {
			return nil, cause
		}
		*attempt++
		l, err := dial(ctx, s.cluster)
		if err == nil {
			return l, nil
		}
		if ctx.Err() == nil {
			cause = fmt.Errorf("reconnect: %w", err)
		}
	}
}

// session publishes on l, first s.retry and then the jobs never published,
// until every job is settled, a job fails or l is lost. If l is lost it
// returns lost true and the loss as err, and s.retry holds the jobs to
// publish on the next connection; otherwise err is the first failure, if
// any.
func (s *sender) session(ctx context.Context, l *link) (lost bool, err error) {
	p, err := s.open(l)
	if err != nil {
		return p.lost(ctx), err
	}
	for s.failed == nil && (len(s.retry) > 0 || s.next < len(s.jobs)) {
		if len(p.inflight) == s.window {
			if err := s.awaitOldest(ctx, p); err != nil {
				return s.lose(p, nil, err)
			}
			continue // which may have failed
		}
		m := s.take()
		dc, err := p.ch.PublishWithDeferredConfirmWithContext(ctx,
			"",      // the default exchange, which routes by queue name
			m.queue, // routing key
			true,    // mandatory: return the job if no queue takes it
			false,   // immediate
			m.pub,
		)
		if err != nil {
			err = fmt.Errorf("publish %s: %w", m.label, err)
			if p.lost(ctx) {
				return s.lose(p, &m, err)
			}
			s.fail(err)
			break
		}
		p.inflight = append(p.inflight, inflight{m, dc})
		s.showProgress()
	}
	for len(p.inflight) > 0 {
		if err := s.awaitOldest(ctx, p); err != nil {
			return s.lose(p, nil, err)
		}
	}
	return false, s.failed
}

// open opens a channel on l, declares the queue on it and puts it in
// confirm mode. It returns a publisher even with an error, for its lost
// method.
func (s *sender) open(l *link) (*publisher, error) {
	p := &publisher{
		conn:       l.Connection,
		connCloses: l.NotifyClose(make(chan *amqp.Error, 1)),
		queue:      s.cfg.Queue,
	}
	// A refusal comes back with the channel it closed, which says that
	// it is final (publisher.lost).
	ch, _, err := broker.DeclareJobQueue(l.Connection, nil, s.cfg.Queue, s.cfg.QueueType, s.cfg.MaxPriority, "")
	if ch == nil {
		return p, err
	}
	p.ch = ch
	l.ch = ch
	p.chCloses = ch.NotifyClose(make(chan *amqp.Error, 1))
	if err != nil {
		return p, err
	}
	if err := ch.Confirm(false /* noWait */); err != nil {
		return p, fmt.Errorf("enable publisher confirms: %w", err)
	}
	// Returns are taken after each confirm, so no more of them wait than
	// there are unconfirmed jobs: the window.
	p.returns = broker.NewReturns(ch, s.window)
	return p, nil
}

// take returns the next job to publish: the oldest one to publish again, or
// else the first one never published.
func (s *sender) take() message {
	if len(s.retry) > 0 {
		m := s.retry[0]
		s.retry = s.retry[1:]
		return m
	}
	s.next++
	m := newMessage(s.cfg, s.next-1, s.jobs[s.next-1], s.opts)
	if s.out.ids != nil {
		s.out.ids[m.index] = m.pub.MessageId
	}
	s.spans.start(&m)
	return m
}

// awaitOldest waits for the broker to settle the oldest job in flight and
// reports it. It returns an error only if the connection was lost first; then
// the job stays in flight.
func (s *sender) awaitOldest(ctx context.Context, p *publisher) error {
	m := p.inflight[0]
	select {
	case <-m.dc.Done():
	default:
		s.out.flush() // what is confirmed is shown before the caller waits
	}
	lost, err := p.await(ctx, m)
	if lost {
		return err
	}
	p.inflight = p.inflight[1:]
	s.out.settle(m.index, err == nil)
	s.spans.end(m.index, err)
	if err != nil {
		s.fail(err)
	}
	s.showProgress()
	return nil
}

// lose deals with the loss of p's connection, as cause says. It reports the
// jobs in flight that the broker confirmed or returned before the loss, and
// puts the others, then unpublished if not nil, ahead of s.retry, for the
// next connection. After a failure there is no next connection: then it
// returns lost false and the failure.
func (s *sender) lose(p *publisher, unpublished *message, cause error) (lost bool, err error) {
	var again []message
	for _, m := range p.inflight {
		if r, ok := p.takeReturn(m.message); ok {
			s.out.settle(m.index, false)
			err := returnedError(m.message, p.queue, r)
			s.spans.end(m.index, err)
			s.fail(err)
		} else if m.dc.Acked() {
			s.out.settle(m.index, true)
			s.spans.end(m.index, nil)
		} else {
			again = append(again, m.message)
		}
	}
	p.inflight = nil
	if unpublished != nil {
		again = append(again, *unpublished)
	}
	s.retry = append(again, s.retry...)
	if s.failed != nil {
		return false, s.failed
	}
	return true, cause
}

// fail records err unless a failure came first.
func (s *sender) fail(err error) {
	if s.failed == nil {
		s.failed = err
	}
}

// link is a connection that the end of ctx closes at once: closing the
// socket is the only way to interrupt a write that the broker does not read
// or a call it does not answer.
type link struct {
	*amqp.Connection
	ch     *amqp.Channel // the channel open on it, if any
	stop   func() bool   // cancels the closing on ctx's end
	closed chan struct{} // closed once that closing has run
}

// dial connects to a node of the cluster within ctx.
func dial(ctx context.Context, cluster *broker.Cluster) (*link, error) {
	conn, err := cluster.Dial(ctx)
	if err != nil {
		return nil, err
	}
	l := &link{Connection: conn, closed: make(chan struct{})}
	l.stop = context.AfterFunc(ctx, func() {
		defer close(l.closed)
		conn.CloseDeadline(time.Now())
	})
	return l, nil
}

// close closes l: politely, within ctx's deadline, if l is sound, or at once
// if it was lost. Whether closing works changes nothing about what was
// confirmed.
func (l *link) close(ctx context.Context, sound bool) {
	if sound && l.ch != nil {
		// The channel goes first, while ctx's end is still set to close the
		// socket: that bounds the wait for a broker that does not answer.
		// The deadline that CloseDeadline sets does not: the library's
		// heartbeater moves it when it handles a frame read just before.
		l.ch.Close()
	}
	if !l.stop() {
		<-l.closed // ctx ended, and that closed l
		return
	}
	deadline := time.Now()
	if sound {
		deadline, _ = ctx.Deadline()
	}
	l.CloseDeadline(deadline)
}

// publisher is one channel in confirm mode and the jobs in flight on it.
type publisher struct {
	conn       *amqp.Connection
	connCloses chan *amqp.Error // why conn closed
	ch         *amqp.Channel    // nil if it could not be opened
	chCloses   chan *amqp.Error // why ch closed

	queue   string          // the job queue
	returns *broker.Returns // jobs the broker could not route; nil until confirms are on

	inflight []inflight // published and not yet settled, oldest first
}

// inflight is a job published on a channel and not yet settled.
type inflight struct {
	message
	dc *amqp.DeferredConfirmation
}

// lost tells whether an operation on p failed because the connection was
// lost, which another connection can cure, rather than because ctx ended or
// the broker refused the operation by closing the channel alone, which it
// cannot. A failed write shuts the connection down in the background, so a
// failure while the channel still looks open counts as a loss too.
func (p *publisher) lost(ctx context.Context) bool {
	return ctx.Err() == nil && (p.conn.IsClosed() || p.ch == nil || !p.ch.IsClosed())
}

// await waits for the broker to settle m. It returns nil if the broker took
// m; otherwise it returns why not, with lost true if the connection was lost
// first, which leaves m's fate unknown.
func (p *publisher) await(ctx context.Context, m inflight) (lost bool, err error) {
	select {
	case <-m.dc.Done():
	case <-ctx.Done():
		// A confirm that came in as ctx ended still counts.
		select {
		case <-m.dc.Done():
		default:
			return false, fmt.Errorf("wait for the confirm of %s: %w", m.label, ctx.Err())
		}
	}
	if r, ok := p.takeReturn(m.message); ok {
		return false, returnedError(m.message, p.queue, r)
	}
	if m.dc.Acked() {
		return false, nil
	}
	// The library also completes a confirm, as not acked, when the channel
	// closes. It marks the connection closed before it closes the channels,
	// and a channel before it completes the confirms.
	switch {
	case ctx.Err() != nil: // ending ctx closes the connection too
		return false, fmt.Errorf("wait for the confirm of %s: %w", m.label, ctx.Err())
	case p.conn.IsClosed():
		return true, fmt.Errorf("connection lost: %w", closeReason(p.connCloses))
	case p.ch.IsClosed():
		return false, fmt.Errorf("%s not confirmed: channel closed: %w", m.label, closeReason(p.chCloses))
	}
	return false, fmt.Errorf("broker nacked %s", m.label)
}

// returnedError says that the broker returned m. Only a delay queue can be
// missing: the caller declares jobQueue itself, and the daemon the others.
func returnedError(m message, jobQueue string, r amqp.Return) error {
	if m.queue != jobQueue {
		return fmt.Errorf("broker returned %s as unroutable: %d %s: no delay queue %s: start the daemon first, it declares the delay queues", m.label, r.ReplyCode, r.ReplyText, m.queue)
	}
	return fmt.Errorf("broker returned %s as unroutable: %d %s", m.label, r.ReplyCode, r.ReplyText)
}

// takeReturn returns and forgets the return of m, if the broker returned it.
func (p *publisher) takeReturn(m message) (amqp.Return, bool) {
	return p.returns.Take("", m.queue, m.pub.MessageId)
}

// closeReason returns why the connection or channel that closes belongs to
// closed, or amqp.ErrClosed if it does not say yet.
func closeReason(closes chan *amqp.Error) error {
	select {
	case e, ok := <-closes:
		if ok && e != nil {
			return e
		}
	default:
	}
	return amqp.ErrClosed
}
