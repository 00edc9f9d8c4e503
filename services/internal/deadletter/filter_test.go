package deadletter

import (
	"reflect"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/outcome"
)

var now = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

// deadJob returns a dead job as the daemon writes it, published age ago.
func deadJob(id, name, reason string, age time.Duration) Job {
	return JobOf(amqp.Delivery{
		MessageId: id,
		Type:      name,
		Timestamp: now.Add(-age),
		Headers: amqp.Table{
			outcome.HeaderReason:     reason,
			outcome.HeaderAttempts:   int64(5),
			outcome.HeaderLastStatus: int64(500),
			outcome.HeaderLastError:  "worker answered 500",
			outcome.HeaderQueue:      "commands",
		},
		Body: []byte(`{"number":42}`),
	})
}

func TestJobOf(t *testing.T) {
	j := deadJob("m1", "send-mail", outcome.ReasonExhausted, time.Hour)
	want := Job{ID: "m1", Name: "send-mail", Reason: outcome.ReasonExhausted, Attempts: 5, LastStatus: 500,
		LastError: "worker answered 500", Queue: "commands", Timestamp: now.Add(-time.Hour)}
	j.Message = amqp.Delivery{}
	if !reflect.DeepEqual(j, want) {
		t.Errorf("JobOf:\n got %+v\nwant %+v", j, want)
	}
	odd := JobOf(amqp.Delivery{Headers: amqp.Table{
		outcome.HeaderAttempts:   int32(3),
		outcome.HeaderLastStatus: "404", // not a number: absent
		outcome.HeaderReason:     []byte("rejected"),
		"x-delivery-count":       int64(7),
	}})
	if odd.Attempts != 3 || odd.LastStatus != 0 || odd.Reason != "rejected" || odd.Deliveries != 7 {
		t.Errorf("JobOf of other header types: %+v", odd)
	}
	if age := odd.Age(now); age != -1 {
		t.Errorf("Age without a timestamp = %v, want -1", age)
	}
}

func TestFilterMatch(t *testing.T) {
	old := deadJob("m1", "send-mail", outcome.ReasonRejected, 48*time.Hour)
	recent := deadJob("m2", "resize", outcome.ReasonExhausted, 10*time.Minute)
	noTime := deadJob("m3", "resize", outcome.ReasonMalformed, 0)
	noTime.Timestamp = time.Time{}
	tests := []struct {
		name   string
		filter Filter
		want   []bool // old, recent, noTime
	}{
		{"zero selects all", Filter{}, []bool{true, true, true}},
		{"ids", Filter{IDs: []string{"m2", "m3"}}, []bool{false, true, true}},
		{"reason", Filter{Reason: outcome.ReasonRejected}, []bool{true, false, false}},
		{"job name", Filter{Name: "resize"}, []bool{false, true, true}},
		{"older than", Filter{OlderThan: 24 * time.Hour}, []bool{true, false, false}},
		{"newer than", Filter{NewerThan: time.Hour}, []bool{false, true, false}},
		{"between", Filter{OlderThan: time.Minute, NewerThan: 72 * time.Hour}, []bool{true, true, false}},
		{"all must pass", Filter{Name: "resize", OlderThan: time.Hour}, []bool{false, false, false}},
		{"age at the bound is not older", Filter{OlderThan: 10 * time.Minute}, []bool{true, false, false}},
	}
	for _, tt := range tests {
		for i, j := range []Job{old, recent, noTime} {
			if got := tt.filter.Match(j, now); got != tt.want[i] {
				t.Errorf("%s: Match(%s) = %v, want %v", tt.name, j.ID, got, tt.want[i])
			}
		}
	}
	if !(Filter{}).IsZero() || (Filter{Reason: "x"}).IsZero() || (Filter{IDs: []string{"a"}}).IsZero() {
		t.Error("IsZero is wrong")
	}
}
