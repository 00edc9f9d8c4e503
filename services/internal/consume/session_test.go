package consume

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/rs/zerolog"

	"github.com/fpmq/fpmq/services/internal/amqptest"
	"github.com/fpmq/fpmq/services/internal/backoff"
	"github.com/fpmq/fpmq/services/internal/broker"
)

// TestDeclared: Declared is closed once the topology is on the broker,
// every queue of it there, and not while no session got that far (the
// daemon's queue figures wait for it, so that they never ask for a queue
// that does not exist yet).
func TestDeclared(t *testing.T) {
	var dials atomic.Int32
	unreachable := New(Config{
		Topology: topology,
		Dial: func(context.Context) (*amqp.Connection, error) {
			dials.Add(1)
			return nil, errors.New("connection refused")
		},
		Reconnect: backoff.Policy{Initial: time.Millisecond, Max: 10 * time.Millisecond},
	}, nil, zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { unreachable.Run(ctx); close(ran) }()
	amqptest.WaitFor(t, "three sessions failed", func() bool { return dials.Load() >= 3 })
	select {
	case <-unreachable.Declared():
		t.Error("Declared closed without a broker")
	default:
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

// gatedDials is a Dial to an amqptest.Server whose calls after the first
// session's two wait until gate is closed, so that the gap between
// sessions can be looked at.
type gatedDials struct {
	srv   *amqptest.Server
	dials atomic.Int32 // calls so far
	gate  chan struct{}
}

func gateDials(srv *amqptest.Server) *gatedDials {
	return &gatedDials{srv: srv, gate: make(chan struct{})}
}

func (g *gatedDials) dial(ctx context.Context) (*amqp.Connection, error) {
	if g.dials.Add(1) > 2 {
		select {
		case <-g.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return broker.Dial(ctx, g.srv.URL, nil)
}

// disruption is a loss that ends a session: what the test does to the
// broker, and what the logged error then says.
type disruption struct {
	name    string
	disrupt func(t *testing.T, srv *amqptest.Server)
	reason  string // in the logged error
}

// disruptions are the losses TestSessionEndsAndResumes causes, one per
// thing a session depends on.
var disruptions = []disruption{
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

// TestSessionEndsAndResumes loses, one at a time, each thing the consumer
// depends on. The session ends with the reason logged, the state is
// Connecting until a new session consumes, and the new session declares
// the topology again.
func TestSessionEndsAndResumes(t *testing.T) {
	for _, tc := range disruptions {
		t.Run(tc.name, func(t *testing.T) {
			srv := amqptest.NewServer(t)
			g := gateDials(srv)
			h := start(t, srv, ack, func(cfg *Config) { cfg.Dial = g.dial })
			amqptest.WaitFor(t, "consuming", func() bool {
				_, _, ok := connWith(srv, consuming)
				return ok && h.c.State() == Consuming
			})
			enqueue(t, srv, "before")
			amqptest.WaitFor(t, "the first job acked", func() bool { return len(acked(srv)) == 1 })

			tc.disrupt(t, srv)
			amqptest.WaitFor(t, "a new connection attempt", func() bool { return g.dials.Load() == 3 })
			if got := h.c.State(); got != Connecting {
				t.Errorf("state %s between sessions, want connecting", got)
			}
			close(g.gate)
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
// connection is blocked when a job publishes its copy, and that job,
// waiting for its copy's confirm, does not stop other jobs from being
// acked on the consuming connection.
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
	// The broker blocks the publishing connection at its first publish under
	// the alarm, as RabbitMQ does at the message's header: the body of
	// copy-2's copy, and so its confirm, wait for the alarm to clear.
	enqueue(t, srv, "copy-2")
	<-publishing
	amqptest.WaitFor(t, "blocked", h.c.Blocked)
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

// TestOneBlockWatch: the publishing connection's blocks are watched once,
// and that watch drives the Publisher's gate, Blocked and the log alike:
// when Blocked says the broker blocks the connection, the Publisher that
// handlers get refuses to send already; once that connection is gone,
// Blocked says so although the alarm lasts.
func TestOneBlockWatch(t *testing.T) {
	srv := amqptest.NewServer(t)
	pubs := make(chan *broker.Publisher, 1)
	g := gateDials(srv)
	h := start(t, srv, func(ctx context.Context, d amqp.Delivery, pub *broker.Publisher) error {
		select {
		case pubs <- pub:
		default:
		}
		return d.Ack(false)
	}, func(cfg *Config) { cfg.Dial = g.dial })
	t.Cleanup(func() { srv.SetAlarm(false); close(g.gate) }) // before the harness stops
	enqueue(t, srv, "first")
	var pub *broker.Publisher
	select {
	case pub = <-pubs:
	case <-time.After(5 * time.Second):
		t.Fatal("no job ran")
	}

	srv.SetAlarm(true)
	// The broker blocks the publishing connection at its first publish under
	// the alarm; without body, that publish is taken whole.
	if err := pub.Publish(t.Context(), topology.DeadQueue, amqp.Publishing{MessageId: "blocking"}); err != nil {
		t.Fatalf("the publish that blocks the connection: %v", err)
	}
	amqptest.WaitFor(t, "blocked", h.c.Blocked)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := pub.Publish(ctx, topology.DeadQueue, amqp.Publishing{MessageId: "during"}); !errors.Is(err, broker.ErrNotSent) {
		t.Errorf("publish once Blocked() says blocked: %v, want ErrNotSent", err)
	}
	amqptest.WaitFor(t, "the block logged", func() bool { return len(h.logs.entries("broker blocked the publishing connection")) == 1 })

	c, _, _ := connWith(srv, publishing)
	srv.Drop(c.Number)
	amqptest.WaitFor(t, "a new connection attempt", func() bool { return g.dials.Load() == 3 })
	if h.c.Blocked() {
		t.Error("Blocked() = true once the blocked connection is gone, want false")
	}
	if n := len(h.logs.entries("broker unblocked the publishing connection")); n != 0 {
		t.Errorf("logged an unblock %d times for a connection that closed, want none", n)
	}
	if pubs := srv.Published(); len(pubs) != 1 || pubs[0].MessageId != "blocking" {
		t.Errorf("published %+v, want only the publish that blocked the connection", pubs)
	}
}
