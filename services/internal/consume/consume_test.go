package consume

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/rs/zerolog"

	"github.com/fpmq/fpmq/services/internal/amqptest"
	"github.com/fpmq/fpmq/services/internal/backoff"
	"github.com/fpmq/fpmq/services/internal/broker"
	"github.com/fpmq/fpmq/services/internal/outcome"
)

// topology declares three queues: the job queue, its dead-letter queue and
// one retry queue.
var topology = broker.Topology{
	Queue:       "jobs",
	QueueType:   broker.QueueClassic,
	DeadQueue:   "jobs.dead",
	RetryDelays: []time.Duration{time.Second},
}

const queuesPerSession = 3

// harness runs a Consumer against an amqptest.Server.
type harness struct {
	srv    *amqptest.Server
	c      *Consumer
	logs   *logBuffer
	cancel context.CancelFunc
	done   chan error // Run's result
}

// start runs a consumer of srv with handle, in a goroutine that the test's
// cleanup stops and waits for. The backoffs are in milliseconds;
// configure may change the rest.
func start(t *testing.T, srv *amqptest.Server, handle Handler, configure func(*Config)) *harness {
	t.Helper()
	cfg := Config{
		URL:             srv.URL,
		Topology:        topology,
		Concurrency:     2,
		ShutdownTimeout: 5 * time.Second,
		ConnectTimeout:  5 * time.Second,
		Reconnect:       backoff.Policy{Initial: time.Millisecond, Max: 10 * time.Millisecond},
		ProbeBackoff:    backoff.Policy{Initial: time.Millisecond, Max: 10 * time.Millisecond},
	}
	if configure != nil {
		configure(&cfg)
	}
	logs := &logBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{srv: srv, c: New(cfg, handle, zerolog.New(logs)), logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- h.c.Run(ctx) }()
	t.Cleanup(func() {
		if _, err := h.stop(); err != nil {
			t.Error(err)
		}
	})
	return h
}

// stop cancels Run and returns its result, or an error if it did not
// return in time.
func (h *harness) stop() (runErr, err error) {
	h.cancel()
	select {
	case runErr = <-h.done:
		h.done <- runErr // for a later stop
		return runErr, nil
	case <-time.After(10 * time.Second):
		return nil, errors.New("Run did not return after cancellation")
	}
}

func enqueue(t *testing.T, srv *amqptest.Server, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := srv.Enqueue(topology.Queue, amqp.Publishing{MessageId: id, Body: []byte(id)}); err != nil {
			t.Fatal(err)
		}
	}
}

func ack(_ context.Context, d amqp.Delivery, _ *broker.Publisher) error {
	return d.Ack(false)
}

// settled returns the IDs of the messages settled with method, and
// requeued if requeue.
func settled(srv *amqptest.Server, method string, requeue bool) []string {
	var ids []string
	for _, s := range srv.Settled() {
		if s.Method == method && s.Requeue == requeue {
			ids = append(ids, s.Message.MessageId)
		}
	}
	return ids
}

func acked(srv *amqptest.Server) []string { return settled(srv, "ack", false) }

func queueState(t *testing.T, srv *amqptest.Server) amqptest.QueueInfo {
	t.Helper()
	q, ok := srv.Queue(topology.Queue)
	if !ok {
		t.Fatalf("queue %q does not exist", topology.Queue)
	}
	return q
}

// connWith returns the open connection that has a channel matching match.
func connWith(srv *amqptest.Server, match func(amqptest.ChannelInfo) bool) (amqptest.ConnInfo, amqptest.ChannelInfo, bool) {
	for _, c := range srv.Conns() {
		for _, ch := range c.Channels {
			if match(ch) {
				return c, ch, true
			}
		}
	}
	return amqptest.ConnInfo{}, amqptest.ChannelInfo{}, false
}

func consuming(ch amqptest.ChannelInfo) bool  { return len(ch.Consumers) > 0 }
func publishing(ch amqptest.ChannelInfo) bool { return ch.Confirm }

// logBuffer collects a zerolog logger's JSON lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// entries returns the log entries whose message contains msg.
func (l *logBuffer) entries(msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var found []map[string]any
	for line := range strings.Lines(l.b.String()) {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil && strings.Contains(fmt.Sprint(e["message"]), msg) {
			found = append(found, e)
		}
	}
	return found
}

func TestConcurrencyBound(t *testing.T) {
	srv := amqptest.NewServer(t)
	var ids []string
	for i := range 10 {
		ids = append(ids, fmt.Sprint("job-", i))
	}
	enqueue(t, srv, ids...)
	var running, peak atomic.Int32
	releaseCh := make(chan struct{})
	release := sync.OnceFunc(func() { close(releaseCh) })
	h := start(t, srv, func(ctx context.Context, d amqp.Delivery, pub *broker.Publisher) error {
		n := running.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-releaseCh
		running.Add(-1)
		return d.Ack(false)
	}, func(cfg *Config) { cfg.Concurrency = 3 })
	t.Cleanup(release) // before the harness stops, should the test fail first

	amqptest.WaitFor(t, "3 jobs run", func() bool { return running.Load() == 3 })
	if q := queueState(t, srv); q.Unacked != 3 || q.Ready != 7 {
		t.Errorf("queue holds %d unacked and %d ready, want 3 (the prefetch, defaulting to the concurrency) and 7", q.Unacked, q.Ready)
	}
	if _, ch, ok := connWith(srv, consuming); !ok || ch.Prefetch != 3 {
		t.Errorf("consuming channel %+v, want prefetch 3", ch)
	}
	release()
	amqptest.WaitFor(t, "every job acked", func() bool { return len(acked(srv)) == len(ids) })
	if p := peak.Load(); p != 3 {
		t.Errorf("%d jobs ran at once, want at most and at least 3", p)
	}
	if got := h.c.State(); got != Consuming {
		t.Errorf("state %s, want consuming", got)
	}
}

// poolDownError is what a handler returns when the pool cannot take a job.
func poolDownError(d amqp.Delivery) error {
	return fmt.Errorf("job %s: connect to php-fpm: connection refused: %w", d.MessageId, outcome.ErrPoolUnavailable)
}

func TestPauseRequeuesProbesAndResumes(t *testing.T) {
	srv := amqptest.NewServer(t)
	enqueue(t, srv, "a", "b", "c")
	var down atomic.Bool
	down.Store(true)
	var probes atomic.Int32
	h := start(t, srv, func(ctx context.Context, d amqp.Delivery, pub *broker.Publisher) error {
		if down.Load() {
			d.Nack(false, true)
			return poolDownError(d)
		}
		return d.Ack(false)
	}, func(cfg *Config) {
		cfg.Concurrency = 1
		cfg.Prefetch = 3
		cfg.Probe = func(context.Context) error {
			probes.Add(1)
			if down.Load() {
				return errors.New("ping: connection refused")
			}
			return nil
		}
	})

	amqptest.WaitFor(t, "paused", func() bool { return h.c.State() == Paused })
	if err := h.c.PauseReason(); !errors.Is(err, outcome.ErrPoolUnavailable) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("PauseReason() = %v, want the handler's error", err)
	}
	amqptest.WaitFor(t, "the subscription cancelled and every job back in the queue", func() bool {
		q := queueState(t, srv)
		return q.Consumers == 0 && q.Ready == 3 && q.Unacked == 0
	})
	amqptest.WaitFor(t, "the pool probed again after a failed probe", func() bool { return probes.Load() >= 2 })
	if got := h.c.State(); got != Paused {
		t.Errorf("state %s while the probe fails, want paused", got)
	}
	if n := len(acked(srv)); n != 0 {
		t.Errorf("%d jobs acked while paused, want none", n)
	}

	down.Store(false)
	amqptest.WaitFor(t, "every job acked after the resume", func() bool { return len(acked(srv)) == 3 })
	if got, err := h.c.State(), h.c.PauseReason(); got != Consuming || err != nil {
		t.Errorf("state %s, pause reason %v; want consuming and nil", got, err)
	}
	if !slices.Equal(slices.Sorted(slices.Values(acked(srv))), []string{"a", "b", "c"}) {
		t.Errorf("acked %v, want a, b and c once each", acked(srv))
	}
	if n := len(h.logs.entries("pausing consumption")); n != 1 {
		t.Errorf("logged the pause %d times, want once", n)
	}
}

// TestProbeBackoffGrowsAcrossPauses has a pool that answers every probe but
// fails every job: each resume ends in a new pause, and the probe delays
// keep growing instead of starting over, until a job succeeds.
func TestProbeBackoffGrowsAcrossPauses(t *testing.T) {
	srv := amqptest.NewServer(t)
	enqueue(t, srv, "a")
	var fail atomic.Bool
	fail.Store(true)
	var mu sync.Mutex
	var probeTimes []time.Time
	policy := backoff.Policy{Initial: time.Millisecond, Max: 64 * time.Millisecond, Factor: 2}
	h := start(t, srv, func(ctx context.Context, d amqp.Delivery, pub *broker.Publisher) error {
		if fail.Load() {
			d.Nack(false, true)
			return poolDownError(d)
		}
		return d.Ack(false)
	}, func(cfg *Config) {
		cfg.Concurrency = 1
		cfg.ProbeBackoff = policy
		cfg.Probe = func(context.Context) error {
			mu.Lock()
			probeTimes = append(probeTimes, time.Now())
			mu.Unlock()
			return nil
		}
	})

	const pauses = 6
	amqptest.WaitFor(t, fmt.Sprintf("%d pauses", pauses), func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(probeTimes) >= pauses
	})
	if step := h.c.probeStep.Load(); step < pauses {
		t.Errorf("probe step %d after %d pauses without a successful job, want at least %d", step, pauses, pauses)
	}
	mu.Lock()
	for i := 1; i < pauses; i++ {
		// Probe i waits at least half of Delay(i) (the jitter) after the
		// pause that followed probe i-1.
		if gap, least := probeTimes[i].Sub(probeTimes[i-1]), policy.Delay(i)/2; gap < least {
			t.Errorf("probe %d came %v after the one before, want at least %v", i, gap, least)
		}
	}
	mu.Unlock()

	fail.Store(false)
	// The job may succeed while a pause begins; the probe that ends that
	// pause then counts once after the reset.
	amqptest.WaitFor(t, "the job acked, consuming, and the probe backoff started over", func() bool {
		return len(acked(srv)) == 1 && h.c.State() == Consuming && h.c.probeStep.Load() <= 1
	})
}

func TestDrainOnShutdown(t *testing.T) {
	srv := amqptest.NewServer(t)
	enqueue(t, srv, "first", "second", "third")
	started := make(chan string, 3)
	releaseCh := make(chan struct{})
	release := sync.OnceFunc(func() { close(releaseCh) })
	h := start(t, srv, func(ctx context.Context, d amqp.Delivery, pub *broker.Publisher) error {
		started <- d.MessageId
		if d.MessageId == "first" {
			<-releaseCh
		}
		return d.Ack(false)
	}, func(cfg *Config) {
		cfg.Concurrency = 1
		cfg.Prefetch = 3
	})
	t.Cleanup(release) // before the harness stops, should the test fail first

	select {
	case id := <-started:
		if id != "first" {
			t.Fatalf("job %s ran first, want first", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no job started")
	}
	amqptest.WaitFor(t, "all three delivered", func() bool { return queueState(t, srv).Unacked == 3 })

	h.cancel()
	// The broker may deliver a requeued job again before it gets the
	// cancel; the consumer requeues it again.
	amqptest.WaitFor(t, "the two jobs not started requeued and the subscription cancelled", func() bool {
		q := queueState(t, srv)
		return q.Ready == 2 && q.Unacked == 1 && q.Consumers == 0
	})
	if n := len(settled(srv, "nack", true)); n < 2 {
		t.Errorf("%d deliveries requeued, want at least 2", n)
	}
	select {
	case <-h.done:
		t.Fatal("Run returned while a job was running")
	default:
	}

	release()
	if err, stopErr := h.stop(); err != nil || stopErr != nil {
		t.Fatalf("Run returned %v (%v), want nil", err, stopErr)
	}
	if got := acked(srv); !slices.Equal(got, []string{"first"}) {
		t.Errorf("acked %v, want only the job that was running", got)
	}
	if len(started) != 0 {
		t.Errorf("job %s started after the shutdown began", <-started)
	}
	if got := h.c.State(); got != Stopped {
		t.Errorf("state %s, want stopped", got)
	}
	amqptest.WaitFor(t, "both connections closed", func() bool { return len(srv.Conns()) == 0 })
	if len(h.logs.entries("in-flight jobs done")) != 1 {
		t.Error("the drain was not logged")
	}
}

func TestShutdownTimeoutCancelsJobs(t *testing.T) {
	srv := amqptest.NewServer(t)
	enqueue(t, srv, "slow")
	running := make(chan struct{})
	jobErr := make(chan error, 1)
	const timeout = 20 * time.Millisecond
	h := start(t, srv, func(ctx context.Context, d amqp.Delivery, pub *broker.Publisher) error {
		close(running)
		<-ctx.Done()
		jobErr <- ctx.Err()
		return d.Nack(false, true)
	}, func(cfg *Config) { cfg.ShutdownTimeout = timeout })

	<-running
	began := time.Now()
	if err, stopErr := h.stop(); err != nil || stopErr != nil {
		t.Fatalf("Run returned %v (%v), want nil", err, stopErr)
	}
	if elapsed := time.Since(began); elapsed < timeout {
		t.Errorf("Run returned after %v, before the shutdown timeout %v", elapsed, timeout)
	}
	if err := <-jobErr; !errors.Is(err, context.Canceled) {
		t.Errorf("job context ended with %v, want cancelled", err)
	}
	if q := queueState(t, srv); q.Ready != 1 {
		t.Errorf("%d jobs back in the queue, want the one cut off", q.Ready)
	}
	if len(h.logs.entries("shutdown timeout")) != 1 {
		t.Error("the timeout was not logged")
	}
}

// TestSessionEndsAndResumes loses, one at a time, each thing the consumer
// depends on. The session ends with the reason logged, the state is
// Connecting until a new session consumes, and the new session declares
// the topology again.
func TestSessionEndsAndResumes(t *testing.T) {
	tests := []struct {
		name    string
		disrupt func(t *testing.T, srv *amqptest.Server)
		reason  string // in the logged error
	}{
		{
			name: "consuming connection dropped",
			disrupt: func(t *testing.T, srv *amqptest.Server) {
				c, _, _ := connWith(srv, consuming)
				srv.Drop(c.Number)
			},
			reason: "consuming connection closed",
		},
		{
			name: "publishing connection dropped",
			disrupt: func(t *testing.T, srv *amqptest.Server) {
				c, _, _ := connWith(srv, publishing)
				srv.Drop(c.Number)
			},
			reason: "publishing connection closed",
		},
		{
			name: "consumer timeout closes the consuming channel",
			disrupt: func(t *testing.T, srv *amqptest.Server) {
				c, ch, _ := connWith(srv, consuming)
				srv.CloseChannel(c.Number, ch.ID, 406, "PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out")
			},
			reason: "consuming channel closed: Exception (406) Reason: \"PRECONDITION_FAILED - delivery acknowledgement",
		},
		{
			name: "publishing channel closed",
			disrupt: func(t *testing.T, srv *amqptest.Server) {
				c, ch, _ := connWith(srv, publishing)
				srv.CloseChannel(c.Number, ch.ID, 406, "PRECONDITION_FAILED - message size 200 is larger than configured max size 100")
			},
			reason: "publishing channel closed",
		},
		{
			name: "queue deleted",
			disrupt: func(t *testing.T, srv *amqptest.Server) {
				if !srv.DeleteQueue(topology.Queue) {
					t.Fatal("no queue to delete")
				}
			},
			reason: `the broker cancelled the consumer of "jobs"`,
		},
		{
			name: "consumer cancelled by a policy",
			disrupt: func(t *testing.T, srv *amqptest.Server) {
				if srv.CancelConsumers(topology.Queue) != 1 {
					t.Fatal("no consumer to cancel")
				}
			},
			reason: `the broker cancelled the consumer of "jobs"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := amqptest.NewServer(t)
			// Dials after the first session's two wait for the gate, so that
			// the gap between sessions can be looked at.
			var dials atomic.Int32
			gate := make(chan struct{})
			h := start(t, srv, ack, func(cfg *Config) {
				cfg.Dial = func(ctx context.Context) (*amqp.Connection, error) {
					if dials.Add(1) > 2 {
						select {
						case <-gate:
						case <-ctx.Done():
							return nil, ctx.Err()
						}
					}
					return broker.Dial(ctx, srv.URL, nil)
				}
			})
			amqptest.WaitFor(t, "consuming", func() bool {
				_, _, ok := connWith(srv, consuming)
				return ok && h.c.State() == Consuming
			})
			enqueue(t, srv, "before")
			amqptest.WaitFor(t, "the first job acked", func() bool { return len(acked(srv)) == 1 })

			tc.disrupt(t, srv)
			amqptest.WaitFor(t, "a new connection attempt", func() bool { return dials.Load() == 3 })
			if got := h.c.State(); got != Connecting {
				t.Errorf("state %s between sessions, want connecting", got)
			}
			close(gate)
			amqptest.WaitFor(t, "consuming again", func() bool { return h.c.Reconnects() == 1 && h.c.State() == Consuming })

			declared := srv.Declared()
			if len(declared) != 2*queuesPerSession || declared[queuesPerSession].Queue != topology.Queue {
				t.Errorf("declared %d queues, want the topology (%d queues) again", len(declared), queuesPerSession)
			}
			enqueue(t, srv, "after")
			amqptest.WaitFor(t, "a job acked after the new session", func() bool { return slices.Contains(acked(srv), "after") })
			amqptest.WaitFor(t, "the old session's connections closed", func() bool { return len(srv.Conns()) == 2 })

			ended := h.logs.entries("broker session ended")
			if len(ended) != 1 || !strings.Contains(fmt.Sprint(ended[0]["error"]), tc.reason) {
				t.Errorf("logged %v, want one session end with an error containing %q", ended, tc.reason)
			}
			if len(h.logs.entries("broker session restored")) != 1 {
				t.Error("the new session was not logged")
			}
		})
	}
}

// TestReconnectBackoffAfterFailedDials has the publishing connection fail to
// open: the consuming one opened before is closed, the outage is logged
// once, and the consumer gets going once the broker lets it.
func TestReconnectBackoffAfterFailedDials(t *testing.T) {
	srv := amqptest.NewServer(t)
	var dials atomic.Int32
	h := start(t, srv, ack, func(cfg *Config) {
		cfg.Dial = func(ctx context.Context) (*amqp.Connection, error) {
			// Odd dials open the consuming connection, even ones the
			// publishing one; the first three publishing ones fail.
			if n := dials.Add(1); n%2 == 0 && n <= 6 {
				return nil, errors.New("connection refused")
			}
			return broker.Dial(ctx, srv.URL, nil)
		}
	})
	amqptest.WaitFor(t, "consuming", func() bool { return h.c.State() == Consuming })
	if n := dials.Load(); n != 8 {
		t.Errorf("dialled %d times, want 8", n)
	}
	amqptest.WaitFor(t, "the consuming connections of failed sessions closed", func() bool { return len(srv.Conns()) == 2 })
	if n := h.c.Reconnects(); n != 0 {
		t.Errorf("Reconnects() = %d before any session consumed, want 0", n)
	}
	ended := h.logs.entries("broker session ended")
	if len(ended) != 1 || !strings.Contains(fmt.Sprint(ended[0]["error"]), "publishing connection: connection refused") {
		t.Errorf("logged %v, want the outage once, with its cause", ended)
	}
	if n := len(h.logs.entries("reconnect failed")); n != 2 {
		t.Errorf("logged %d failed reconnects, want 2 (at debug level)", n)
	}
}

// TestBlockedPublishingConnection raises a memory alarm: the publishing
// connection is blocked, and a job waiting to publish its copy does not
// stop other jobs from being acked on the consuming connection.
func TestBlockedPublishingConnection(t *testing.T) {
	srv := amqptest.NewServer(t)
	publishing := make(chan string, 2)
	h := start(t, srv, func(ctx context.Context, d amqp.Delivery, pub *broker.Publisher) error {
		if strings.HasPrefix(d.MessageId, "copy") {
			publishing <- d.MessageId
			if err := pub.Publish(ctx, topology.DeadQueue, amqp.Publishing{MessageId: d.MessageId, Body: d.Body}); err != nil {
				d.Nack(false, true)
				return err
			}
		}
		return d.Ack(false)
	}, nil)
	t.Cleanup(func() { srv.SetAlarm(false) }) // before the harness stops, should the test fail first
	amqptest.WaitFor(t, "consuming", func() bool { return h.c.State() == Consuming })

	enqueue(t, srv, "copy-1")
	<-publishing
	amqptest.WaitFor(t, "the first job acked", func() bool { return len(acked(srv)) == 1 })
	pubs, acks := srv.Published(), srv.Settled()
	if len(pubs) != 1 || pubs[0].RoutingKey != topology.DeadQueue || pubs[0].Conn == acks[0].Conn {
		t.Fatalf("published %+v and acked on connection %d; want the copy on a connection of its own", pubs, acks[0].Conn)
	}

	srv.SetAlarm(true)
	amqptest.WaitFor(t, "blocked", h.c.Blocked)
	enqueue(t, srv, "copy-2")
	<-publishing
	enqueue(t, srv, "plain")
	amqptest.WaitFor(t, "a job acked while another waits to publish", func() bool { return slices.Contains(acked(srv), "plain") })
	if slices.Contains(acked(srv), "copy-2") {
		t.Error("a job acked although the broker blocks its copy")
	}
	if got := h.c.State(); got != Consuming {
		t.Errorf("state %s while blocked, want consuming", got)
	}

	srv.SetAlarm(false)
	amqptest.WaitFor(t, "unblocked and the waiting job acked", func() bool { return !h.c.Blocked() && slices.Contains(acked(srv), "copy-2") })
	if n := len(h.logs.entries("broker blocked the publishing connection")); n != 1 {
		t.Errorf("logged the block %d times, want once", n)
	}
	if n := len(h.logs.entries("broker unblocked the publishing connection")); n != 1 {
		t.Errorf("logged the unblock %d times, want once", n)
	}
}

// TestOperatorPause pauses while jobs run: they finish, the rest go back to
// the queue, nothing else starts and the consumer holds nothing; pausing
// again changes nothing; resuming runs the rest, each once.
func TestOperatorPause(t *testing.T) {
	srv := amqptest.NewServer(t)
	ids := []string{"a", "b", "c", "d", "e", "f"}
	enqueue(t, srv, ids...)
	started := make(chan string, len(ids))
	releaseCh := make(chan struct{})
	release := sync.OnceFunc(func() { close(releaseCh) })
	h := start(t, srv, func(ctx context.Context, d amqp.Delivery, pub *broker.Publisher) error {
		started <- d.MessageId
		<-releaseCh
		return d.Ack(false)
	}, func(cfg *Config) {
		cfg.Concurrency = 2
		cfg.Prefetch = 4
	})
	t.Cleanup(release) // before the harness stops, should the test fail first

	amqptest.WaitFor(t, "two jobs run and four delivered", func() bool { return len(started) == 2 && queueState(t, srv).Unacked == 4 })
	if !h.c.Pause("database migration") {
		t.Fatal("Pause() = false on a consuming consumer, want true")
	}
	amqptest.WaitFor(t, "the subscription cancelled and the jobs not started requeued", func() bool {
		q := queueState(t, srv)
		return q.Consumers == 0 && q.Unacked == 2 && q.Ready == 4
	})
	paused, reason, since := h.c.OperatorPaused()
	if !paused || reason != "database migration" || time.Since(since) > time.Minute {
		t.Errorf("OperatorPaused() = %t, %q, %v; want true, the reason, now", paused, reason, since)
	}
	if got := h.c.State(); got != Paused {
		t.Errorf("state %s, want paused", got)
	}
	if n := h.c.Held(); n != 2 {
		t.Errorf("Held() = %d while two jobs run, want 2", n)
	}
	if h.c.Pause("another reason") {
		t.Error("Pause() = true on a paused consumer, want false")
	}
	if _, reason, again := h.c.OperatorPaused(); reason != "database migration" || !again.Equal(since) {
		t.Errorf("a second pause changed the reason to %q or the time to %v", reason, again)
	}

	release()
	amqptest.WaitFor(t, "the running jobs acked", func() bool { return len(acked(srv)) == 2 })
	amqptest.WaitFor(t, "nothing held", func() bool { q := queueState(t, srv); return q.Unacked == 0 && q.Ready == 4 && h.c.Held() == 0 })
	if n := len(started); n != 2 {
		t.Errorf("%d jobs started, want the 2 running when the pause came", n)
	}

	if !h.c.Resume() {
		t.Fatal("Resume() = false on a paused consumer, want true")
	}
	amqptest.WaitFor(t, "every job acked", func() bool { return len(acked(srv)) == len(ids) })
	if got := slices.Sorted(slices.Values(acked(srv))); !slices.Equal(got, ids) {
		t.Errorf("acked %v, want each job once", got)
	}
	if got := h.c.State(); got != Consuming {
		t.Errorf("state %s after the resume, want consuming", got)
	}
	if h.c.Resume() {
		t.Error("Resume() = true on a consuming consumer, want false")
	}
	if paused, _, _ := h.c.OperatorPaused(); paused {
		t.Error("OperatorPaused() still true after Resume")
	}
	for _, msg := range []string{"consumption paused by operator", "consumption resumed by operator"} {
		if e := h.logs.entries(msg); len(e) != 1 || e[0]["reason"] != "database migration" {
			t.Errorf("logged %q as %v, want once with the reason", msg, e)
		}
	}
}

// TestOperatorPauseAndPoolPause checks that the two pauses are independent:
// the pool returning does not end an operator's pause, and an operator's
// resume does not end the pool's.
func TestOperatorPauseAndPoolPause(t *testing.T) {
	t.Run("the pool returning during an operator's pause", func(t *testing.T) {
		srv := amqptest.NewServer(t)
		enqueue(t, srv, "a", "b")
		var down atomic.Bool
		running := make(chan struct{}, 1)
		gate := make(chan struct{})
		h := start(t, srv, func(ctx context.Context, d amqp.Delivery, pub *broker.Publisher) error {
			if d.MessageId == "a" && !d.Redelivered {
				running <- struct{}{}
				<-gate
			}
			if down.Load() {
				d.Nack(false, true)
				return poolDownError(d)
			}
			return d.Ack(false)
		}, func(cfg *Config) {
			cfg.Concurrency = 1
			cfg.Prefetch = 1
			cfg.Probe = func(context.Context) error {
				if down.Load() {
					return errors.New("ping: connection refused")
				}
				return nil
			}
		})

		<-running
		h.c.Pause("deploy")
		amqptest.WaitFor(t, "unsubscribed", func() bool { return queueState(t, srv).Consumers == 0 })
		// The running job finds the pool gone.
		down.Store(true)
		close(gate)
		amqptest.WaitFor(t, "the pool pause recorded", func() bool { return h.c.PauseReason() != nil })
		down.Store(false)
		amqptest.WaitFor(t, "the pool found again", func() bool { return h.c.PauseReason() == nil })
		if got, q := h.c.State(), queueState(t, srv); got != Paused || q.Consumers != 0 || q.Ready != 2 {
			t.Errorf("state %s, %d consumers, %d ready; want paused by the operator still, with both jobs in the queue", got, q.Consumers, q.Ready)
		}
		if n := len(h.logs.entries("consumption stays paused by operator")); n != 1 {
			t.Errorf("logged the pool's return %d times during the operator's pause, want once", n)
		}

		h.c.Resume()
		amqptest.WaitFor(t, "both jobs acked", func() bool { return len(acked(srv)) == 2 })
	})

	t.Run("an operator's resume while the pool is away", func(t *testing.T) {
		srv := amqptest.NewServer(t)
		enqueue(t, srv, "a")
		var down atomic.Bool
		down.Store(true)
		h := start(t, srv, func(ctx context.Context, d amqp.Delivery, pub *broker.Publisher) error {
			if down.Load() {
				d.Nack(false, true)
				return poolDownError(d)
			}
			return d.Ack(false)
		}, func(cfg *Config) {
			cfg.Concurrency = 1
			cfg.Probe = func(context.Context) error {
				if down.Load() {
					return errors.New("ping: connection refused")
				}
				return nil
			}
		})

		amqptest.WaitFor(t, "paused for the pool", func() bool { return h.c.State() == Paused && h.c.PauseReason() != nil })
		h.c.Pause("incident")
		h.c.Resume()
		amqptest.WaitFor(t, "the resume logged", func() bool { return len(h.logs.entries("still paused until the php-fpm pool answers")) == 1 })
		if got, q := h.c.State(), queueState(t, srv); got != Paused || h.c.PauseReason() == nil || q.Consumers != 0 {
			t.Errorf("state %s, pause reason %v, %d consumers; want paused for the pool", got, h.c.PauseReason(), q.Consumers)
		}

		down.Store(false)
		amqptest.WaitFor(t, "the job acked once the pool answers", func() bool { return len(acked(srv)) == 1 && h.c.State() == Consuming })
	})
}

// TestOperatorPauseSurvivesReconnect drops the connection of a paused
// consumer: the next session connects but does not consume.
func TestOperatorPauseSurvivesReconnect(t *testing.T) {
	srv := amqptest.NewServer(t)
	h := start(t, srv, ack, nil)
	amqptest.WaitFor(t, "consuming", func() bool { return h.c.State() == Consuming })
	h.c.Pause("maintenance")
	amqptest.WaitFor(t, "unsubscribed", func() bool { return h.c.State() == Paused && queueState(t, srv).Consumers == 0 })

	c, _, _ := connWith(srv, publishing)
	srv.Drop(c.Number)
	amqptest.WaitFor(t, "connected again", func() bool { return h.c.Reconnects() == 1 && h.c.State() == Paused })
	enqueue(t, srv, "kept")
	if q := queueState(t, srv); q.Consumers != 0 || q.Ready != 1 {
		t.Errorf("%d consumers, %d ready after the reconnection; want none and the job kept", q.Consumers, q.Ready)
	}
	if n := len(h.logs.entries("consumption stays paused by operator")); n != 1 {
		t.Errorf("logged the paused session %d times, want once", n)
	}

	h.c.Resume()
	amqptest.WaitFor(t, "the job acked after the resume", func() bool { return slices.Contains(acked(srv), "kept") })
}

// TestQuorumPauseRequeuesByCopy: on a quorum queue, which counts returns
// toward its delivery limit, the deliveries a pause gives back, started or
// not, go back as copies and are acked: none is nacked.
func TestQuorumPauseRequeuesByCopy(t *testing.T) {
	srv := amqptest.NewServer(t)
	enqueue(t, srv, "a", "b", "c")
	var down atomic.Bool
	down.Store(true)
	var mu sync.Mutex
	var ran []string
	h := start(t, srv, func(ctx context.Context, d amqp.Delivery, pub *broker.Publisher) error {
		if down.Load() {
			// As the dispatcher does on a quorum queue.
			broker.Requeue(ctx, pub, d, topology.Queue, true)
			return poolDownError(d)
		}
		mu.Lock()
		ran = append(ran, d.MessageId)
		mu.Unlock()
		return d.Ack(false)
	}, func(cfg *Config) {
		cfg.Topology.QueueType = broker.QueueQuorum
		cfg.Concurrency = 1
		cfg.Prefetch = 3
		cfg.Probe = func(context.Context) error {
			if down.Load() {
				return errors.New("ping: connection refused")
			}
			return nil
		}
	})
	amqptest.WaitFor(t, "paused with every job back in the queue", func() bool {
		q := queueState(t, srv)
		return h.c.State() == Paused && q.Consumers == 0 && q.Ready == 3 && q.Unacked == 0
	})
	down.Store(false)
	amqptest.WaitFor(t, "the three jobs run after the resume", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ran) == 3
	})
	if nacked := settled(srv, "nack", true); len(nacked) != 0 {
		t.Errorf("nacked %v, want none: copies instead", nacked)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(slices.Sorted(slices.Values(ran)), []string{"a", "b", "c"}) {
		t.Errorf("ran %v, want a, b and c once each", ran)
	}
}

// TestDeclared: Declared is closed once the topology is on the broker,
// every queue of it there, and not while no session got that far (the
// daemon's queue figures wait for it, so that they never ask for a queue
// that does not exist yet).
func TestDeclared(t *testing.T) {
	unreachable := New(Config{
		Topology: topology,
		Dial: func(context.Context) (*amqp.Connection, error) {
			return nil, errors.New("connection refused")
		},
		Reconnect: backoff.Policy{Initial: time.Millisecond, Max: 10 * time.Millisecond},
	}, nil, zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { unreachable.Run(ctx); close(ran) }()
	select {
	case <-unreachable.Declared():
		t.Error("Declared closed without a broker")
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	<-ran

	srv := amqptest.NewServer(t)
	h := start(t, srv, func(ctx context.Context, d amqp.Delivery, pub *broker.Publisher) error { return d.Ack(false) }, nil)
	select {
	case <-h.c.Declared():
	case <-time.After(5 * time.Second):
		t.Fatal("Declared not closed 5 s after start")
	}
	for _, q := range []string{topology.Queue, topology.DeadQueue, topology.RetryQueue(0)} {
		if _, ok := srv.Queue(q); !ok {
			t.Errorf("queue %q missing once Declared is closed", q)
		}
	}
}
