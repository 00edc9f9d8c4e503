package deadletter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/amqptest"
	"github.com/fpmq/fpmq/services/internal/broker"
	"github.com/fpmq/fpmq/services/internal/outcome"
)

const deadQueue = "commands.dead"

// seed starts a broker whose dead-letter queue holds n dead jobs, m1 to
// mn, in that order: m2, m4, ... were rejected, the others exhausted their
// attempts; m3 has no x-fpmq-queue header. The job queue exists, empty.
func seed(t *testing.T, n int) (*amqptest.Server, *amqp.Connection) {
	t.Helper()
	srv := amqptest.NewServer(t)
	for i := 1; i <= n; i++ {
		reason := outcome.ReasonExhausted
		if i%2 == 0 {
			reason = outcome.ReasonRejected
		}
		h := amqp.Table{
			outcome.HeaderReason:   reason,
			outcome.HeaderAttempts: int64(5),
			outcome.HeaderQueue:    "commands",
			"tenant":               "acme",
		}
		if i == 3 {
			delete(h, outcome.HeaderQueue)
		}
		msg := amqp.Publishing{MessageId: fmt.Sprintf("m%d", i), Type: "send-mail", Timestamp: now, Headers: h, Body: []byte(fmt.Sprintf(`{"number":%d}`, i))}
		if err := srv.Enqueue(deadQueue, msg); err != nil {
			t.Fatal(err)
		}
	}
	conn := dial(t, srv)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := broker.DeclareQueue(ch, "commands", broker.QueueClassic); err != nil {
		t.Fatal(err)
	}
	ch.Close()
	return srv, conn
}

func dial(t *testing.T, srv *amqptest.Server) *amqp.Connection {
	t.Helper()
	conn, err := amqp.Dial(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func open(t *testing.T, conn *amqp.Connection) *Session {
	t.Helper()
	s, err := Open(conn, deadQueue)
	if err != nil {
		t.Fatal(err)
	}
	s.idle = 20 * time.Millisecond
	return s
}

// ids lists the ids of the messages in queue, in order, and leaves them.
func ids(t *testing.T, conn *amqp.Connection, queue string) []string {
	t.Helper()
	s, err := Open(conn, queue)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if _, err := List(context.Background(), s, Filter{}, now, func(j Job) error {
		got = append(got, j.ID)
		return nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return got
}

func seq(from, to int, skip ...int) []string {
	var out []string
	for i := from; i <= to; i++ {
		if !slices.Contains(skip, i) {
			out = append(out, fmt.Sprintf("m%d", i))
		}
	}
	return out
}

func TestListLeavesTheQueueAsItWas(t *testing.T) {
	srv, conn := seed(t, 6)
	s := open(t, conn)
	if s.Count() != 6 {
		t.Fatalf("Count = %d, want 6", s.Count())
	}
	var listed []string
	res, err := List(context.Background(), s, Filter{Reason: outcome.ReasonRejected}, now, func(j Job) error {
		listed = append(listed, j.ID)
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"m2", "m4", "m6"}; !slices.Equal(listed, want) {
		t.Errorf("listed %v, want %v", listed, want)
	}
	if res.Read != 6 || res.Matched != 3 || res.Done != 3 {
		t.Errorf("result %+v, want 6 read, 3 matched and listed", res)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, conn, deadQueue); !slices.Equal(got, seq(1, 6)) {
		t.Errorf("after list the queue holds %v, want %v", got, seq(1, 6))
	}
	if n := len(srv.Settled()); n != 0 {
		t.Errorf("list settled %d messages, want none", n)
	}
	if q, _ := srv.Queue(deadQueue); q.Ready != 6 || q.Unacked != 0 {
		t.Errorf("queue %+v, want 6 ready, none unacked", q)
	}
}

func TestListNamesMissingIDs(t *testing.T) {
	_, conn := seed(t, 3)
	s := open(t, conn)
	defer s.Close()
	res, err := List(context.Background(), s, Filter{IDs: []string{"m9", "m2", "m9", "m0"}}, now, func(Job) error { return nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Done != 1 || !slices.Equal(res.Missing, []string{"m9", "m0"}) {
		t.Errorf("result %+v, want m2 found, m9 and m0 missing", res)
	}
}

func TestEachStopsWhenOthersTookMessages(t *testing.T) {
	srv, conn := seed(t, 5)
	s := open(t, conn)
	defer s.Close()
	// Another reader takes two messages after the count was made, and
	// holds them.
	ch, err := dial(t, srv).Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Qos(2, 0, false); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(deadQueue, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case <-deliveries:
		case <-time.After(5 * time.Second):
			t.Fatal("the other reader got nothing")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := s.Each(ctx, func(amqp.Delivery) error { return nil })
	if err != nil || n != 3 {
		t.Errorf("Each = %d, %v; want the 3 messages left, and no error", n, err)
	}
}

// replayCfg returns a replay configuration that publishes through a
// broker.Publisher on conn, and checks before each publish that every
// earlier replayed job's ack was taken in by the broker, and this job's
// not.
func replayCfg(t *testing.T, srv *amqptest.Server, conn *amqp.Connection, f Filter) (*ReplayConfig, *[]string) {
	t.Helper()
	pub, err := broker.NewPublisher(conn)
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	replayed := 0
	cfg := &ReplayConfig{
		Filter: f,
		Now:    now,
		Publish: func(ctx context.Context, queue string, msg amqp.Publishing) error {
			settled := srv.Settled()
			if len(settled) != replayed {
				t.Errorf("publishing %s: %d dead copies acked, want the %d replayed before it", msg.MessageId, len(settled), replayed)
			}
			for _, st := range settled {
				if st.Message.MessageId == msg.MessageId {
					t.Errorf("%s: its dead copy was acked before the new one was published", msg.MessageId)
				}
			}
			err := pub.Publish(ctx, queue, msg)
			if err == nil {
				replayed++
			}
			return err
		},
		Failed: func(j Job, err error) { failed = append(failed, j.ID) },
	}
	return cfg, &failed
}

func TestReplay(t *testing.T) {
	srv, conn := seed(t, 6)
	cfg, failed := replayCfg(t, srv, conn, Filter{Reason: outcome.ReasonExhausted})
	s := open(t, conn)
	res, err := Replay(context.Background(), s, *cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// m1, m3 and m5 were selected; m3 has no queue to go to.
	if res.Matched != 3 || res.Done != 2 || res.Failed != 1 || !slices.Equal(*failed, []string{"m3"}) {
		t.Errorf("result %+v, failed %v; want m1 and m5 replayed, m3 failed", res, *failed)
	}
	if got, want := ids(t, conn, "commands"), []string{"m1", "m5"}; !slices.Equal(got, want) {
		t.Errorf("job queue holds %v, want %v", got, want)
	}
	if got, want := ids(t, conn, deadQueue), seq(2, 6, 5); !slices.Equal(got, want) {
		t.Errorf("dead-letter queue holds %v, want %v", got, want)
	}
	for _, p := range srv.Published() {
		if p.RoutingKey != "commands" || !p.Mandatory || p.DeliveryMode != amqp.Persistent {
			t.Errorf("published %s to %q, mandatory %v, mode %d; want commands, mandatory, persistent", p.MessageId, p.RoutingKey, p.Mandatory, p.DeliveryMode)
		}
		// The job's own, and the replay's publication time.
		ms, _ := p.Headers[outcome.HeaderTimestampMs].(int64)
		if at := time.UnixMilli(ms); len(p.Headers) != 2 || p.Headers["tenant"] != "acme" || time.Since(at) < 0 || time.Since(at) > time.Minute {
			t.Errorf("published %s with headers %v, want only the job's own and the replay's time", p.MessageId, p.Headers)
		}
	}
}

func TestReplayFallbackAndRefusals(t *testing.T) {
	srv, conn := seed(t, 4)
	cfg, failed := replayCfg(t, srv, conn, Filter{IDs: []string{"m3", "m4", "m7"}})
	cfg.Fallback = "nosuch" // m3 goes there, and is returned
	s := open(t, conn)
	res, err := Replay(context.Background(), s, *cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if res.Done != 1 || !slices.Equal(*failed, []string{"m3"}) || !slices.Equal(res.Missing, []string{"m7"}) {
		t.Errorf("result %+v, failed %v; want m4 replayed, m3 failed, m7 missing", res, *failed)
	}
	if got, want := ids(t, conn, deadQueue), seq(1, 3); !slices.Equal(got, want) {
		t.Errorf("dead-letter queue holds %v, want %v", got, want)
	}
}

func TestReplayInterruptedLosesNothing(t *testing.T) {
	srv, conn := seed(t, 6)
	// The broker closes the publishing channel at the third publish.
	srv.OnPublish = func(seq int, p amqptest.Publishing) amqptest.Verdict {
		if seq == 3 {
			return amqptest.CloseChannel
		}
		return amqptest.Ack
	}
	cfg, _ := replayCfg(t, srv, conn, Filter{})
	cfg.Fallback = "commands"
	s := open(t, conn)
	res, err := Replay(context.Background(), s, *cfg)
	if err == nil {
		t.Error("Replay went on after its publishing channel closed")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	replayed, dead := ids(t, conn, "commands"), ids(t, conn, deadQueue)
	if !slices.Equal(replayed, seq(1, 2)) || !slices.Equal(dead, seq(3, 6)) || res.Done != 2 {
		t.Errorf("replayed %v, dead %v (result %+v); want m1, m2 replayed and m3 to m6 still dead, in order", replayed, dead, res)
	}
}

func TestReplayRate(t *testing.T) {
	srv, conn := seed(t, 3)
	cfg, _ := replayCfg(t, srv, conn, Filter{})
	cfg.Fallback, cfg.Rate = "commands", 20 // 50ms apart
	s := open(t, conn)
	defer s.Close()
	start := time.Now()
	if _, err := Replay(context.Background(), s, *cfg); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Errorf("3 jobs at 20/s took %v, want at least 100ms", took)
	}
}

func TestPurge(t *testing.T) {
	srv, conn := seed(t, 5)
	var asked []string
	ask := func(answer bool) func([]Job) (bool, error) {
		return func(jobs []Job) (bool, error) {
			asked = asked[:0]
			for _, j := range jobs {
				asked = append(asked, j.ID)
				if j.Message.Body != nil {
					t.Errorf("%s: purge kept its body to ask", j.ID)
				}
			}
			return answer, nil
		}
	}

	s := open(t, conn)
	res, err := Purge(context.Background(), s, Filter{Reason: outcome.ReasonRejected}, now, ask(false), nil)
	s.Close()
	if !errors.Is(err, ErrDeclined) || res.Done != 0 || !slices.Equal(asked, []string{"m2", "m4"}) {
		t.Errorf("declined purge: %+v, %v, asked %v; want nothing done, m2 and m4 asked", res, err, asked)
	}
	if got := ids(t, conn, deadQueue); !slices.Equal(got, seq(1, 5)) {
		t.Errorf("after a declined purge the queue holds %v", got)
	}

	s = open(t, conn)
	res, err = Purge(context.Background(), s, Filter{Reason: outcome.ReasonRejected}, now, ask(true), nil)
	if err != nil || res.Done != 2 {
		t.Errorf("purge: %+v, %v; want 2 done", res, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := ids(t, conn, deadQueue), []string{"m1", "m3", "m5"}; !slices.Equal(got, want) {
		t.Errorf("after purge the queue holds %v, want %v", got, want)
	}
	if n := len(srv.Published()); n != 0 {
		t.Errorf("purge published %d messages", n)
	}
}

func TestOpenMissingQueue(t *testing.T) {
	srv := amqptest.NewServer(t)
	if _, err := Open(dial(t, srv), "nosuch.dead"); !errors.Is(err, ErrQueueNotFound) {
		t.Errorf("Open of a missing queue: %v, want ErrQueueNotFound", err)
	}
}

func TestLimitReadsTheFirstMessagesOnly(t *testing.T) {
	srv, conn := seed(t, 10)
	s := open(t, conn)
	s.Limit(3)
	var listed []string
	res, err := List(context.Background(), s, Filter{}, now, func(j Job) error {
		listed = append(listed, j.ID)
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := seq(1, 3); !slices.Equal(listed, want) {
		t.Errorf("listed %v, want %v", listed, want)
	}
	if res.Total != 10 || res.Read != 3 {
		t.Errorf("result %+v, want 10 in all, 3 read", res)
	}
	// The broker was asked for three: it holds no more for the session.
	if q, _ := srv.Queue(deadQueue); q.Ready != 7 || q.Unacked != 3 {
		t.Errorf("while the session is open the queue is %+v, want 7 ready and 3 unacked", q)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, conn, deadQueue); !slices.Equal(got, seq(1, 10)) {
		t.Errorf("after a limited list the queue holds %v, want %v", got, seq(1, 10))
	}
}
