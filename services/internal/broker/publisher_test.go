package broker

import (
	"context"
	"errors"
	"strings"
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

// TestPublisherWaitsWhileBlocked: under a resource alarm, Publish sends
// nothing, so that giving up (ctx) can never leave a copy behind that a
// second try would duplicate; once the alarm clears it sends.
func TestPublisherWaitsWhileBlocked(t *testing.T) {
	srv := amqptest.NewServer(t)
	p := publisher(t, srv)
	// RabbitMQ blocks only connections that have published.
	if err := p.Publish(t.Context(), "jobs", amqp.Publishing{MessageId: "before"}); err != nil {
		t.Fatal(err)
	}
	srv.SetAlarm(true)
	amqptest.WaitFor(t, "the publisher to see the block", func() bool {
		select {
		case <-p.unblocked():
			return false
		default:
			return true
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := p.Publish(ctx, "jobs", amqp.Publishing{MessageId: "during"}); !errors.Is(err, ErrNotSent) {
		t.Errorf("publish while blocked: %v, want ErrNotSent", err)
	}
	srv.SetAlarm(false)
	if err := p.Publish(t.Context(), "jobs", amqp.Publishing{MessageId: "after"}); err != nil {
		t.Errorf("publish after the alarm: %v", err)
	}
	if q, _ := srv.Queue("jobs"); q.Ready != 3 {
		t.Errorf("queue holds %d messages, want 3: existing, before, after (not during)", q.Ready)
	}
}
