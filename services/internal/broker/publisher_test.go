package broker

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/amqptest"
)

// publisher returns a Publisher on a connection to srv, which has the queue
// "jobs".
func publisher(t *testing.T, srv *amqptest.Server) *Publisher {
	t.Helper()
	if err := srv.Enqueue("jobs", amqp.Publishing{MessageId: "existing"}); err != nil {
		t.Fatal(err)
	}
	conn, err := Dial(t.Context(), srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	p, err := NewPublisher(conn)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPublisher(t *testing.T) {
	srv := &amqptest.Server{OnPublish: func(_ int, p amqptest.Publishing) amqptest.Verdict {
		if p.MessageId == "refused" {
			return amqptest.Nack
		}
		return amqptest.Ack
	}}
	srv.Start(t)
	p := publisher(t, srv)
	tests := []struct {
		id, queue string
		want      string // in the error; empty for success
	}{
		{"ok", "jobs", ""},
		{"lost", "missing", "returned as unroutable"},
		{"refused", "jobs", "nacked"},
		{"ok again", "jobs", ""},
		{"lost", "missing", "returned as unroutable"}, // the same key again
	}
	for _, tc := range tests {
		err := p.Publish(t.Context(), tc.queue, amqp.Publishing{MessageId: tc.id})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("publish %s to %s: %v", tc.id, tc.queue, err)
		case tc.want != "" && (!errors.Is(err, ErrNotConfirmed) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("publish %s to %s: %v, want ErrNotConfirmed and %q", tc.id, tc.queue, err, tc.want)
		}
	}
	if q, _ := srv.Queue("jobs"); q.Ready != 3 {
		t.Errorf("queue holds %d messages, want 3: one before and the two acked", q.Ready)
	}
}

func TestPublisherNotifyClose(t *testing.T) {
	srv := &amqptest.Server{OnPublish: func(int, amqptest.Publishing) amqptest.Verdict { return amqptest.CloseChannel }}
	srv.Start(t)
	p := publisher(t, srv)
	closed := p.NotifyClose(make(chan *amqp.Error, 1))
	// Whether the broker holds a message whose channel closed before its
	// confirm is unknown: not ErrNotConfirmed, which says it does not.
	if err := p.Publish(t.Context(), "jobs", amqp.Publishing{MessageId: "too big"}); err == nil || errors.Is(err, ErrNotConfirmed) {
		t.Errorf("publish on a channel the broker closes: %v, want an error other than ErrNotConfirmed", err)
	}
	select {
	case e := <-closed:
		if e == nil || e.Code != 406 {
			t.Errorf("NotifyClose gave %v, want the broker's 406", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("NotifyClose said nothing")
	}
}

func TestReturnsNilSafe(t *testing.T) {
	var r *Returns
	if _, ok := r.Take("", "jobs", "id"); ok {
		t.Error("a nil Returns holds a return")
	}
}

// TestPublisherWaitsWhileBlocked: once the broker blocked the connection
// under a resource alarm, Publish sends nothing, so that giving up (ctx)
// can never leave a copy behind that a second try would duplicate; once
// the alarm clears it sends. The publish that the broker blocked the
// connection at is confirmed once the alarm clears.
func TestPublisherWaitsWhileBlocked(t *testing.T) {
	srv := amqptest.NewServer(t)
	p := publisher(t, srv)
	srv.SetAlarm(true)
	// The broker blocks the connection at its first publish under the
	// alarm, as RabbitMQ does at the message's header: its body, and so its
	// confirm, wait for the alarm to clear.
	blocking := make(chan error, 1)
	go func() {
		blocking <- p.Publish(t.Context(), "jobs", amqp.Publishing{MessageId: "blocking", Body: []byte("job")})
	}()
	amqptest.WaitFor(t, "the publisher to see the block", p.blocks.Blocked)
	// The publish gives up once ctx ends, whether it was waiting by then or
	// not: either way it has sent nothing.
	ctx, cancel := context.WithCancel(t.Context())
	during := make(chan error, 1)
	go func() { during <- p.Publish(ctx, "jobs", amqp.Publishing{MessageId: "during"}) }()
	cancel()
	if err := <-during; !errors.Is(err, ErrNotSent) {
		t.Errorf("publish while blocked: %v, want ErrNotSent", err)
	}
	srv.SetAlarm(false)
	if err := receive(t, "the blocking publish's end", blocking); err != nil {
		t.Errorf("the publish that the connection was blocked at, after the alarm: %v", err)
	}
	if err := p.Publish(t.Context(), "jobs", amqp.Publishing{MessageId: "after"}); err != nil {
		t.Errorf("publish after the alarm: %v", err)
	}
	if q, _ := srv.Queue("jobs"); q.Ready != 3 {
		t.Errorf("queue holds %d messages, want 3: existing, blocking, after (not during)", q.Ready)
	}
}

// blockSeen is what a BlockWatch's onChange saw: the notification, and
// whether the watch and a Publisher's gate followed it already.
type blockSeen struct {
	b        amqp.Blocking
	blocked  bool // the watch's Blocked
	gateOpen bool // the Publisher's gate
}

// receive returns the next value from ch, or fails the test if none comes
// within 5 s.
func receive[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s within 5 s", what)
		var zero T
		return zero
	}
}

// TestOneBlockWatch: a Publisher made WithBlockWatch has no watcher of its
// own; the one watch gates its publishes and tells onChange of each change
// once, after the gate follows it.
func TestOneBlockWatch(t *testing.T) {
	srv := amqptest.NewServer(t)
	if err := srv.Enqueue("jobs", amqp.Publishing{MessageId: "existing"}); err != nil {
		t.Fatal(err)
	}
	conn, err := Dial(t.Context(), srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var pub atomic.Pointer[Publisher]
	seen := make(chan blockSeen, 4)
	w := WatchBlocked(conn, func(b amqp.Blocking) {
		p := pub.Load()
		select {
		case <-p.blocks.unblocked():
			seen <- blockSeen{b, p.blocks.Blocked(), true}
		default:
			seen <- blockSeen{b, p.blocks.Blocked(), false}
		}
	})
	p, err := NewPublisher(conn, WithBlockWatch(w))
	if err != nil {
		t.Fatal(err)
	}
	if p.blocks != w {
		t.Fatal("the Publisher watches the connection's blocks itself, want the watch it was given")
	}
	pub.Store(p)
	// The broker blocks the connection at its first publish under an
	// alarm; without body, that publish is taken whole.
	blockingPublish := func(id string) {
		t.Helper()
		if err := p.Publish(t.Context(), "jobs", amqp.Publishing{MessageId: id}); err != nil {
			t.Fatalf("the publish that blocks the connection: %v", err)
		}
	}

	srv.SetAlarm(true)
	blockingPublish("blocking")
	if got := receive(t, "the block", seen); !got.b.Active || got.b.Reason != "low on memory" || !got.blocked || got.gateOpen {
		t.Errorf("onChange saw %+v at the block, want active with the reason, blocked, the gate shut", got)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := p.Publish(ctx, "jobs", amqp.Publishing{MessageId: "during"}); !errors.Is(err, ErrNotSent) {
		t.Errorf("publish while blocked: %v, want ErrNotSent", err)
	}
	srv.SetAlarm(false)
	if got := receive(t, "the unblock", seen); got.b.Active || got.blocked || !got.gateOpen {
		t.Errorf("onChange saw %+v at the unblock, want inactive, not blocked, the gate open", got)
	}
	if err := p.Publish(t.Context(), "jobs", amqp.Publishing{MessageId: "after"}); err != nil {
		t.Errorf("publish after the alarm: %v", err)
	}

	// Blocked again, the connection goes away: the watch ends, unblocked,
	// so that publishes fail at once instead of waiting.
	srv.SetAlarm(true)
	blockingPublish("blocking again")
	if got := receive(t, "the second block", seen); !got.b.Active || got.gateOpen {
		t.Errorf("onChange saw %+v at the second block, want active, the gate shut", got)
	}
	for _, c := range srv.Conns() {
		srv.Drop(c.Number)
	}
	receive(t, "the watcher's end", w.Done())
	if w.Blocked() {
		t.Error("a watch of a closed connection reports it blocked")
	}
	// The bound only matters if the publish waits, which it must not.
	ctx, cancel = context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := p.Publish(ctx, "jobs", amqp.Publishing{MessageId: "closed"}); err == nil || errors.Is(err, ErrNotSent) {
		t.Errorf("publish on the closed connection: %v, want the channel's error at once", err)
	}
	close(seen)
	for got := range seen {
		t.Errorf("onChange called again with %+v, want once per change", got)
	}
	if q, _ := srv.Queue("jobs"); q.Ready != 4 {
		t.Errorf("queue holds %d messages, want 4: existing, blocking, after, blocking again (not during)", q.Ready)
	}
}

func TestWithBlockWatchOfAnotherConnection(t *testing.T) {
	srv := amqptest.NewServer(t)
	var conns [2]*amqp.Connection
	for i := range conns {
		conn, err := Dial(t.Context(), srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		conns[i] = conn
	}
	if _, err := NewPublisher(conns[0], WithBlockWatch(WatchBlocked(conns[1], nil))); err == nil {
		t.Error("NewPublisher took the block watch of another connection")
	}
}
