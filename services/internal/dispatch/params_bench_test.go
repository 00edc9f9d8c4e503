package dispatch

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/rs/zerolog"
)

// BenchmarkParams measures the CGI params of one run of a job as the caller
// publishes it (a message id, a timestamp, two headers): the daemon's own
// cost per job before the FastCGI request is written.
func BenchmarkParams(b *testing.B) {
	d := New(nil, nil, Config{Script: "/app/worker.php", Timeout: time.Minute, MaxAttempts: 5, Topology: topology}, zerolog.Nop())
	m := amqp.Delivery{
		MessageId: "0123456789abcdef0123456789abcdef", Timestamp: time.Unix(1700000000, 0),
		ContentType: "application/json", DeliveryMode: amqp.Persistent, Type: "php-form",
		Headers: amqp.Table{"x-fpmq-attempt": int64(2), "tenant": "acme"},
	}
	deadline := time.Now().Add(time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		_ = d.params(m, 16, "application/x-www-form-urlencoded", 2, 5, deadline)
	}
}
