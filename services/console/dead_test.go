package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/amqptest"
	"github.com/fpmq/fpmq/services/internal/broker"
	"github.com/fpmq/fpmq/services/internal/deadletter"
	"github.com/fpmq/fpmq/services/internal/management"
	"github.com/fpmq/fpmq/services/internal/outcome"
	"github.com/fpmq/fpmq/services/internal/queuepolicy"
)

// newAMQPDeadOn returns the console's dead-letter source on a fake broker
// (services/internal/amqptest) whose commands.dead holds n dead jobs, m1
// to mn, every third rejected and the others out of attempts, and a
// management API that calls every queue classic (quorum with quorum set).
func newAMQPDeadOn(t *testing.T, n int, quorum bool) (*amqpDead, *amqptest.Server) {
	t.Helper()
	srv := amqptest.NewServer(t)
	for i := 1; i <= n; i++ {
		reason := outcome.ReasonExhausted
		if i%3 == 0 {
			reason = outcome.ReasonRejected
		}
		msg := amqp.Publishing{MessageId: fmt.Sprintf("m%d", i), Type: "send-mail", Timestamp: time.Now(),
			Headers: amqp.Table{outcome.HeaderReason: reason, outcome.HeaderQueue: "commands"}, Body: []byte(fmt.Sprintf(`{"number":%d}`, i))}
		if err := srv.Enqueue("commands.dead", msg); err != nil {
			t.Fatal(err)
		}
	}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		switch {
		case strings.HasPrefix(r.URL.Path, "/api/overview"):
			fmt.Fprint(w, `{"rabbitmq_version":"4.0.5"}`)
		case quorum:
			fmt.Fprintf(w, `{"name":%q,"type":"quorum","policy":"","effective_policy_definition":{},"arguments":{"x-queue-type":"quorum"}}`, name)
		default:
			fmt.Fprintf(w, `{"name":%q,"type":"classic","arguments":{}}`, name)
		}
	}))
	t.Cleanup(api.Close)
	client, err := management.Config{ManagementURL: api.URL}.Client(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := amqp.Dial(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := conn.Channel()
	if _, err := broker.DeclareQueue(ch, "commands", broker.QueueClassic); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	a := &amqpDead{nodes: []string{srv.URL}, api: client, connectTimeout: 5 * time.Second, publishTimeout: 5 * time.Second, checked: map[string]time.Time{}}
	t.Cleanup(func() { a.Close() })
	return a, srv
}

// queueIDs lists the ids in commands.dead, in order, through the source.
func queueIDs(t *testing.T, a *amqpDead) []string {
	t.Helper()
	p, err := a.Page(context.Background(), "commands", deadletter.Filter{}, 0, 1000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, j := range p.Jobs {
		ids = append(ids, j.ID)
	}
	return ids
}

func idsOf(jobs []deadletter.Job) []string {
	var ids []string
	for _, j := range jobs {
		ids = append(ids, j.ID)
	}
	return ids
}

func TestPageReadsOnlyWhatItShows(t *testing.T) {
	a, srv := newAMQPDeadOn(t, 30, false)
	p, err := a.Page(context.Background(), "commands", deadletter.Filter{}, 5, 10, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := idsOf(p.Jobs), []string{"m6", "m7", "m8", "m9", "m10", "m11", "m12", "m13", "m14", "m15"}; !slices.Equal(got, want) {
		t.Errorf("page %v, want %v", got, want)
	}
	if p.Total != 30 || p.Read != 16 || !p.More {
		t.Errorf("total %d, read %d, more %v; want 30, 16 (5 skipped, 10 shown, 1 to tell there are more), true", p.Total, p.Read, p.More)
	}
	// Filtered: the rejected ones (every third), the 2nd page of 3.
	p, err = a.Page(context.Background(), "commands", deadletter.Filter{Reason: outcome.ReasonRejected}, 3, 3, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := idsOf(p.Jobs), []string{"m12", "m15", "m18"}; !slices.Equal(got, want) {
		t.Errorf("filtered page %v, want %v", got, want)
	}
	// A scan bound stops a filtered page, and says so.
	p, err = a.Page(context.Background(), "commands", deadletter.Filter{Reason: outcome.ReasonRejected}, 0, 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := idsOf(p.Jobs); !slices.Equal(got, []string{"m3", "m6", "m9"}) || !p.Capped || p.Read != 11 {
		t.Errorf("capped page %v, read %d, capped %v; want m3 m6 m9 of the first 11, capped", got, p.Read, p.Capped)
	}
	if q, _ := srv.Queue("commands.dead"); q.Ready != 30 || len(srv.Settled()) != 0 {
		t.Errorf("after reading, the queue is %+v with %d settled; want all 30 back, none settled", q, len(srv.Settled()))
	}
	if got := queueIDs(t, a); len(got) != 30 || got[0] != "m1" || got[29] != "m30" {
		t.Errorf("order after reading: %v", got)
	}
}

func TestShowReplayPurge(t *testing.T) {
	a, srv := newAMQPDeadOn(t, 6, false)
	ctx := context.Background()
	j, err := a.Show(ctx, "commands", "m4")
	if err != nil || j.ID != "m4" || string(j.Message.Body) != `{"number":4}` {
		t.Fatalf("show m4: %+v, %v", j.ID, err)
	}
	if _, err := a.Show(ctx, "commands", "m99"); !errors.Is(err, errJobNotFound) {
		t.Errorf("show m99: %v, want errJobNotFound", err)
	}
	jobs, matched, err := a.Matching(ctx, "commands", deadletter.Filter{Reason: outcome.ReasonRejected}, 1)
	if err != nil || matched != 2 || len(jobs) != 1 || jobs[0].ID != "m3" || jobs[0].Message.Body != nil {
		t.Errorf("matching rejected, at most 1: %v of %d, %v; want m3 without its body, of 2", idsOf(jobs), matched, err)
	}
	res, err := a.Replay(ctx, "commands", deadletter.Filter{IDs: []string{"m2", "m5"}}, 0, nil)
	if err != nil || res.Done != 2 {
		t.Fatalf("replay m2 m5: %+v, %v", res, err)
	}
	if q, _ := srv.Queue("commands"); q.Ready != 2 {
		t.Errorf("commands holds %d after the replay, want 2", q.Ready)
	}
	if res, err := a.Purge(ctx, "commands", deadletter.Filter{IDs: []string{"m1", "m6"}}, nil); err != nil || res.Done != 2 {
		t.Fatalf("purge m1 m6: %+v, %v", res, err)
	}
	if got, want := queueIDs(t, a), []string{"m3", "m4"}; !slices.Equal(got, want) {
		t.Errorf("dead letters left %v, want %v", got, want)
	}
}

func TestDeadRefusesAQueueThatWouldDropJobs(t *testing.T) {
	a, srv := newAMQPDeadOn(t, 3, true) // quorum, RabbitMQ 4's default delivery limit of 20
	_, err := a.Page(context.Background(), "commands", deadletter.Filter{}, 0, 10, 10)
	if !errors.Is(err, queuepolicy.ErrLimited) && !errors.Is(err, queuepolicy.ErrUnverified) {
		t.Fatalf("page of a quorum queue with a delivery limit: %v, want a refusal", err)
	}
	if q, _ := srv.Queue("commands.dead"); q.Consumers != 0 || q.Ready != 3 {
		t.Errorf("the refused read touched the queue: %+v", q)
	}
}
