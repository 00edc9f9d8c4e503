package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/amqptest"
	"github.com/fpmq/fpmq/services/internal/outcome"
)

// TestRunPublishesJobs checks that the flags reach every message: the JSON
// body, the job's name as the type, the headers and the priority.
func TestRunPublishesJobs(t *testing.T) {
	b := &amqptest.Server{}
	useBroker(t, b)
	start := time.Now()
	args := []string{"--type", "send-mail", "--json", `{"to": "a@b"}`, "--header", "tenant=acme", "--priority=5", "7"}
	code, stdout, stderr := callCaller(t.Context(), args, "")
	if code != exitOK || stderr != "" {
		t.Fatalf("exit status %d, stderr %q; want %d and nothing", code, stderr, exitOK)
	}
	if want := " [x] Message sent: {\"to\":\"a@b\"}\n [x] Message sent: 7\n"; stdout != want {
		t.Errorf("stdout = %q, want %q", stdout, want)
	}
	msgs := b.Published()
	if len(msgs) != 2 {
		t.Fatalf("broker got %d messages, want 2", len(msgs))
	}
	for i, body := range []string{`{"to":"a@b"}`, `{"number":7}`} {
		m := msgs[i]
		if string(m.Body) != body || m.RoutingKey != "commands" || m.Type != "send-mail" || m.Priority != 5 ||
			len(m.Headers) != 2 || m.Headers["tenant"] != "acme" || m.ContentType != "application/json" {
			t.Errorf("message %d: key %q type %q priority %d headers %v body %s; want %s to commands with the flags", i, m.RoutingKey, m.Type, m.Priority, m.Headers, m.Body, body)
		}
		// The publication time in milliseconds, the AMQP timestamp's
		// second.
		ms, ok := m.Headers[outcome.HeaderTimestampMs].(int64)
		if at := time.UnixMilli(ms); !ok || at.Before(start.Truncate(time.Millisecond)) || at.After(time.Now()) || at.Unix() != m.Timestamp.Unix() {
			t.Errorf("message %d: %s = %v (%T), want the time of publishing in ms, in the timestamp's second %v", i, outcome.HeaderTimestampMs, m.Headers[outcome.HeaderTimestampMs], m.Headers[outcome.HeaderTimestampMs], m.Timestamp)
		}
	}
}

// TestRunPublishesDelayed checks where a delayed job goes and when it is
// due: a delay of a second or more to the delay queue of the largest power
// of two seconds not above it (and DELAY_MAX), a shorter one straight to
// the job queue.
func TestRunPublishesDelayed(t *testing.T) {
	tests := []struct {
		delay, max string
		queue      string
		due        time.Duration
	}{
		{"30s", "", "commands.delay.16s", 30 * time.Second},
		{"1s", "", "commands.delay.1s", time.Second},
		{"168h", "", "commands.delay.145h38m8s", 168 * time.Hour},
		{"1h", "10s", "commands.delay.8s", time.Hour},
		{"500ms", "", "commands", 500 * time.Millisecond},
	}
	t.Run("0s", func(t *testing.T) {
		b := &amqptest.Server{}
		useBroker(t, b)
		code, _, stderr := callCaller(t.Context(), []string{"--delay", "0s", "42"}, "")
		if m := b.Published(); code != exitOK || len(m) != 1 || m[0].RoutingKey != "commands" || len(m[0].Headers) != 1 || m[0].Headers[outcome.HeaderDue] != nil {
			t.Errorf("exit status %d (%s), published %+v; want a plain job to commands", code, stderr, m)
		}
	})
	for _, tt := range tests {
		t.Run(tt.delay, func(t *testing.T) {
			b := &amqptest.Server{}
			useBroker(t, b)
			if tt.max != "" {
				t.Setenv("DELAY_MAX", tt.max)
			}
			if err := b.Enqueue(tt.queue, amqp.Publishing{}); err != nil { // the daemon's queue
				t.Fatal(err)
			}
			before := time.Now()
			code, stdout, stderr := callCaller(t.Context(), []string{"--delay", tt.delay, "42"}, "")
			after := time.Now()
			if code != exitOK || stdout != sentLines(42) || stderr != "" {
				t.Fatalf("exit status %d, stdout %q, stderr %q", code, stdout, stderr)
			}
			m := b.Published()[0]
			due, ok := m.Headers["x-fpmq-due"].(int64)
			if m.RoutingKey != tt.queue || !ok || due < before.Add(tt.due).UnixMilli() || due > after.Add(tt.due).UnixMilli() {
				t.Errorf("published to %q with x-fpmq-due %v (%T); want %q, due %s after publishing", m.RoutingKey, m.Headers["x-fpmq-due"], m.Headers["x-fpmq-due"], tt.queue, tt.due)
			}
		})
	}
}

// TestRunDelayWithoutDaemon checks that a delayed job that no delay queue
// takes fails, and says what to do.
func TestRunDelayWithoutDaemon(t *testing.T) {
	b := &amqptest.Server{}
	useBroker(t, b)
	code, stdout, stderr := callCaller(t.Context(), []string{"--delay", "5s", "1", "2"}, "")
	checkFailure(t, code, stdout, stderr, "start the daemon first, it declares the delay queues")
	if !strings.Contains(stderr, "commands.delay.4s") || !strings.HasSuffix(stderr, "(0 of 2 jobs confirmed)\n") {
		t.Errorf("stderr = %q, want the missing queue named and none confirmed", stderr)
	}
}

// TestRunDeclaresPriority checks that AMQP_MAX_PRIORITY makes a classic job
// queue a priority queue, and leaves a quorum queue without the argument.
func TestRunDeclaresPriority(t *testing.T) {
	for _, tt := range []struct{ queueType, want string }{
		{"classic", "commands+durable x-max-priority=10"},
		{"quorum", "commands+durable x-queue-type=quorum"},
	} {
		t.Run(tt.queueType, func(t *testing.T) {
			b := &amqptest.Server{}
			useBroker(t, b)
			t.Setenv("AMQP_QUEUE_TYPE", tt.queueType)
			t.Setenv("AMQP_MAX_PRIORITY", "10")
			code, stdout, stderr := callCaller(t.Context(), []string{"--priority", "9", "5"}, "")
			if code != exitOK || stdout != sentLines(5) || stderr != "" {
				t.Errorf("exit status %d, stdout %q, stderr %q", code, stdout, stderr)
			}
			if got := queues(b); !slices.Equal(got, []string{tt.want}) {
				t.Errorf("declared %q, want %q", got, tt.want)
			}
		})
	}
}

// TestRunPrintsIDs checks --ids: each line gives the message id the job
// was published with, and --ids=VALUE is a usage error.
func TestRunPrintsIDs(t *testing.T) {
	b := &amqptest.Server{}
	useBroker(t, b)
	code, stdout, stderr := callCaller(t.Context(), []string{"--ids", "7", "8"}, "")
	if code != exitOK || stderr != "" {
		t.Fatalf("exit status %d, stderr %q; want %d and nothing", code, stderr, exitOK)
	}
	msgs := b.Published()
	if len(msgs) != 2 {
		t.Fatalf("broker got %d messages, want 2", len(msgs))
	}
	want := fmt.Sprintf(" [x] Message sent: 7 (message id %s)\n [x] Message sent: 8 (message id %s)\n", msgs[0].MessageId, msgs[1].MessageId)
	if stdout != want || msgs[0].MessageId == "" {
		t.Errorf("stdout = %q, want %q", stdout, want)
	}
	if code, _, stderr := callCaller(t.Context(), []string{"--ids=yes", "7"}, ""); code != exitUsage || !strings.Contains(stderr, "--ids takes no value") {
		t.Errorf("--ids=yes: exit status %d, stderr %q; want %d and a usage error", code, stderr, exitUsage)
	}
}
