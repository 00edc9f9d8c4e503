package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/amqptest"
)

// managementAPI serves RabbitMQ's management API for one dead-letter
// queue of type queueType, whose effective policy definition is effective,
// on a broker of version.
func managementAPI(t *testing.T, version, queueType string, effective map[string]any) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/overview":
			json.NewEncoder(w).Encode(map[string]string{"rabbitmq_version": version})
		case "/api/queues/fpmq/commands.dead":
			json.NewEncoder(w).Encode(map[string]any{"name": "commands.dead", "vhost": "fpmq", "type": queueType,
				"arguments": map[string]any{"x-queue-type": queueType}, "effective_policy_definition": effective, "policy": "site-limits"})
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestDeadRefusesALimitedQueue runs "daemon dead list" on a quorum
// dead-letter queue with a delivery limit in effect, and where the limit
// cannot be checked: it exits 3 saying why, and never touches the queue,
// so that no job is read toward its deletion. Where no read can
// drop a job, it lists as before.
func TestDeadRefusesALimitedQueue(t *testing.T) {
	for _, tt := range []struct {
		name       string
		management func(t *testing.T) string
		want       int
		says       string
	}{
		{"quorum, RabbitMQ 4's default limit", func(t *testing.T) string {
			return managementAPI(t, "4.0.5", "quorum", map[string]any{"max-length": 1000000})
		}, exitRefused, `refused, nothing was read: a delivery limit is in effect: commands.dead is a quorum queue with a delivery limit of 20`},
		{"quorum, a policy's limit", func(t *testing.T) string {
			return managementAPI(t, "3.10.8", "quorum", map[string]any{"delivery-limit": 25})
		}, exitRefused, `Policy "site-limits" applies instead of fpmq's`},
		{"API off", func(*testing.T) string { return "off" }, exitRefused, "RABBITMQ_MANAGEMENT_URL is off"},
		{"API unreachable", func(*testing.T) string { return "http://127.0.0.1:1" }, exitRefused, "the delivery limit could not be checked"},
		{"quorum, limit lifted", func(t *testing.T) string {
			return managementAPI(t, "4.0.5", "quorum", map[string]any{"delivery-limit": 1000000})
		}, 0, "kept-1"},
		{"quorum, RabbitMQ 3 without a limit", func(t *testing.T) string {
			return managementAPI(t, "3.10.8", "quorum", map[string]any{"max-length": 1000000})
		}, 0, "kept-1"},
		{"classic", func(t *testing.T) string { return managementAPI(t, "4.0.5", "classic", map[string]any{}) }, 0, "kept-1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := amqptest.NewServer(t)
			if err := srv.Enqueue("commands.dead", amqp.Publishing{MessageId: "kept-1", Body: []byte(`{"number":1}`)}); err != nil {
				t.Fatal(err)
			}
			t.Setenv("AMQP_URL", "amqp://guest:guest@"+srv.Addr+"/fpmq")
			t.Setenv("RABBITMQ_MANAGEMENT_URL", tt.management(t))
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"dead", "list", "--json"}, nil, &stdout, &stderr)
			if code != tt.want {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.want, stderr.String())
			}
			if out := stdout.String() + stderr.String(); !strings.Contains(out, tt.says) {
				t.Errorf("output does not say %q:\n%s", tt.says, out)
			}
			if tt.want == exitRefused && (len(srv.Declared()) != 0 || len(srv.Settled()) != 0) {
				t.Errorf("refused, but declared %v and settled %v", srv.Declared(), srv.Settled())
			}
			if q, _ := srv.Queue("commands.dead"); q.Ready != 1 {
				t.Errorf("%d jobs ready in commands.dead at the end, want 1", q.Ready)
			}
		})
	}
}
