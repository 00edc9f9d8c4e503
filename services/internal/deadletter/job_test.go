package deadletter

import (
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/outcome"
)

func TestJobOfReason(t *testing.T) {
	for _, tc := range []struct {
		name              string
		headers           amqp.Table
		wantReason, wantQ string
	}{
		{
			name:       "the daemon's dead letter",
			headers:    amqp.Table{outcome.HeaderReason: outcome.ReasonRejected, outcome.HeaderQueue: "commands"},
			wantReason: outcome.ReasonRejected, wantQ: "commands",
		},
		{
			// A job that waited in a retry queue, then hit a quorum
			// queue's delivery limit: the latest death comes first.
			name: "the broker's, after a retry",
			headers: amqp.Table{"x-death": []any{
				amqp.Table{"reason": "delivery_limit", "queue": "commands", "count": int64(1)},
				amqp.Table{"reason": "expired", "queue": "commands.retry.1s", "count": int64(1)},
			}},
			wantReason: "broker: delivery_limit", wantQ: "commands",
		},
		{
			name: "the daemon's, after a retry: its own reason wins",
			headers: amqp.Table{outcome.HeaderReason: outcome.ReasonExhausted, outcome.HeaderQueue: "commands", "x-death": []any{
				amqp.Table{"reason": "expired", "queue": "commands.retry.1s"},
			}},
			wantReason: outcome.ReasonExhausted, wantQ: "commands",
		},
		{name: "neither", headers: amqp.Table{"x-death": "not an array"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := JobOf(amqp.Delivery{Headers: tc.headers})
			if j.Reason != tc.wantReason || j.Queue != tc.wantQ {
				t.Errorf("reason %q queue %q, want %q %q", j.Reason, j.Queue, tc.wantReason, tc.wantQ)
			}
		})
	}
}
