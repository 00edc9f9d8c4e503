package consume

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/rs/zerolog"

	"github.com/fpmq/fpmq/services/internal/amqptest"
	"github.com/fpmq/fpmq/services/internal/backoff"
	"github.com/fpmq/fpmq/services/internal/broker"
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
	return startPrepared(t, srv, handle, configure, nil)
}

// startPrepared is start with prepare, if not nil, called on the Consumer
// before it runs.
func startPrepared(t *testing.T, srv *amqptest.Server, handle Handler, configure func(*Config), prepare func(*Consumer)) *harness {
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
	if prepare != nil {
		prepare(h.c)
	}
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
