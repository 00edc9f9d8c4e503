package broker

import (
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
	if err := p.Publish(t.Context(), "jobs", amqp.Publishing{MessageId: "too big"}); !errors.Is(err, ErrNotConfirmed) {
		t.Errorf("publish on a channel the broker closes: %v, want ErrNotConfirmed", err)
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
