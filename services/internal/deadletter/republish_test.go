package deadletter

import (
	"reflect"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/outcome"
)

func TestCleanHeaders(t *testing.T) {
	death := []any{amqp.Table{"queue": "commands.retry.1s", "count": int64(1)}}
	in := amqp.Table{
		outcome.HeaderAttempt:    int64(3),
		outcome.HeaderAttempts:   int64(5),
		outcome.HeaderReason:     outcome.ReasonExhausted,
		outcome.HeaderLastStatus: int64(503),
		outcome.HeaderLastError:  "worker answered 503",
		outcome.HeaderQueue:      "commands",
		"x-fpmq-future":          "a header a later daemon may add",
		"x-delivery-count":       int64(4),
		"x-acquired-count":       int64(4),
		"x-death":                death,
		"tenant":                 "acme",
	}
	before := len(in)
	got := CleanHeaders(in)
	want := amqp.Table{"x-death": death, "tenant": "acme"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CleanHeaders:\n got %v\nwant %v", got, want)
	}
	if len(in) != before {
		t.Error("CleanHeaders changed its argument")
	}
	if got := CleanHeaders(nil); got == nil || len(got) != 0 {
		t.Errorf("CleanHeaders(nil) = %#v, want an empty table", got)
	}
	// Every header the daemon writes is one CleanHeaders removes.
	for _, h := range []string{outcome.HeaderAttempt, outcome.HeaderAttempts, outcome.HeaderReason,
		outcome.HeaderLastStatus, outcome.HeaderLastError, outcome.HeaderQueue} {
		if !strings.HasPrefix(h, daemonHeaderPrefix) {
			t.Errorf("outcome header %q does not start with %q: a replayed job would keep it", h, daemonHeaderPrefix)
		}
	}
}

func TestRepublish(t *testing.T) {
	ts := time.Unix(1700000000, 0)
	d := amqp.Delivery{
		Headers:         amqp.Table{outcome.HeaderReason: outcome.ReasonRejected, "tenant": "acme"},
		ContentType:     "application/json",
		ContentEncoding: "identity",
		DeliveryMode:    amqp.Transient,
		Priority:        4,
		CorrelationId:   "corr",
		ReplyTo:         "replies",
		Expiration:      "60000",
		MessageId:       "m1",
		Timestamp:       ts,
		Type:            "send-mail",
		UserId:          "daemon",
		AppId:           "shop",
		Body:            []byte(`{"number":1}`),
		Exchange:        "",
		RoutingKey:      "commands.dead",
		Redelivered:     true,
	}
	now := time.UnixMilli(1800000000123)
	want := amqp.Publishing{
		Headers:         amqp.Table{"tenant": "acme", outcome.HeaderTimestampMs: int64(1800000000123)},
		ContentType:     "application/json",
		ContentEncoding: "identity",
		DeliveryMode:    amqp.Persistent,
		Priority:        4,
		CorrelationId:   "corr",
		ReplyTo:         "replies",
		MessageId:       "m1",
		Timestamp:       ts,
		Type:            "send-mail",
		AppId:           "shop",
		Body:            []byte(`{"number":1}`),
	}
	if got := Republish(d, now); !reflect.DeepEqual(got, want) {
		t.Errorf("Republish:\n got %+v\nwant %+v", got, want)
	}
}

// A replayed job leaves its trace for one of its own, linked to the old
// one: its traceparent moves to the replay-of header, its tracestate goes,
// and a replay-of header of an earlier replay gives way.
func TestRepublishTrace(t *testing.T) {
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	for _, c := range []struct {
		name string
		in   amqp.Table
		want amqp.Table
	}{
		{"traced", amqp.Table{"traceparent": tp, "tracestate": "a=b", "tenant": "acme"},
			amqp.Table{outcome.HeaderReplayOf: tp, "tenant": "acme"}},
		{"replayed before", amqp.Table{"traceparent": tp, outcome.HeaderReplayOf: "00-11111111111111111111111111111111-2222222222222222-01"},
			amqp.Table{outcome.HeaderReplayOf: tp}},
		{"untraced", amqp.Table{"tenant": "acme"}, amqp.Table{"tenant": "acme"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Republish(amqp.Delivery{Headers: c.in}, time.UnixMilli(5)).Headers
			if c.want[outcome.HeaderTimestampMs] = int64(5); !reflect.DeepEqual(got, c.want) {
				t.Errorf("headers:\n got %v\nwant %v", got, c.want)
			}
		})
	}
}
