package management

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// api serves the files of testdata as RabbitMQ version's management API
// does, to user "daemon" with password "p@ss" only, for vhost "fpmq". It
// records the request URIs.
func api(t *testing.T, version string) (*httptest.Server, *[]string) {
	t.Helper()
	var uris []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uris = append(uris, r.RequestURI)
		if u, p, ok := r.BasicAuth(); !ok || u != "daemon" || p != "p@ss" {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"not_authorised","reason":"Login failed"}`))
			return
		}
		file := map[string]string{
			"/api/overview":                  "overview",
			"/api/queues/fpmq":               "queues",
			"/api/queues/fpmq/commands.dead": "queue",
		}[r.URL.Path]
		if file == "" {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":"Object Not Found","reason":"Not Found"}`))
			return
		}
		b, err := os.ReadFile("testdata/rabbitmq-" + version + "-" + file + ".json")
		if err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv, &uris
}

func client(t *testing.T, srv *httptest.Server, amqpURL string) *Client {
	t.Helper()
	c, err := Config{ManagementURL: srv.URL}.Client(amqpURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestQueue reads one queue as RabbitMQ 4.0 and 3.10 answer: 3.10 writes
// an empty definition as [], and null for no policy.
func TestQueue(t *testing.T) {
	for _, tt := range []struct {
		version          string
		want             Queue
		effectiveEntries int
	}{
		{"4.0", Queue{Name: "commands.dead", VHost: "fpmq", Type: "quorum", Policy: "site-limits"}, 1},
		{"3.10", Queue{Name: "commands.dead", VHost: "fpmq", Type: "classic"}, 0},
	} {
		t.Run(tt.version, func(t *testing.T) {
			srv, uris := api(t, tt.version)
			q, err := client(t, srv, "amqp://daemon:p%40ss@rabbitmq:5672/fpmq").Queue(context.Background(), "commands.dead")
			if err != nil {
				t.Fatal(err)
			}
			if q.Name != tt.want.Name || q.VHost != tt.want.VHost || q.Type != tt.want.Type || q.Policy != tt.want.Policy || q.OperatorPolicy != "" {
				t.Errorf("Queue = %+v, want %+v", q, tt.want)
			}
			if len(q.Effective) != tt.effectiveEntries || q.Arguments == nil || q.Effective == nil {
				t.Errorf("effective %v, arguments %v", q.Effective, q.Arguments)
			}
			if (*uris)[0] != "/api/queues/fpmq/commands.dead" {
				t.Errorf("asked for %v", *uris)
			}
		})
	}
}

// TestQueues reads the vhost's queues with the columns it needs only, and
// the version, from both versions' answers.
func TestQueues(t *testing.T) {
	for _, tt := range []struct{ version, full string }{{"4.0", "4.0.5"}, {"3.10", "3.10.8"}} {
		t.Run(tt.version, func(t *testing.T) {
			srv, uris := api(t, tt.version)
			c := client(t, srv, "amqp://daemon:p%40ss@rabbitmq/fpmq")
			qs, err := c.Queues(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(qs) != 3 || qs[0].Name != "commands" || qs[1].Name != "commands.dead" {
				t.Fatalf("Queues = %+v", qs)
			}
			if !strings.HasPrefix((*uris)[0], "/api/queues/fpmq?columns=") || !strings.Contains((*uris)[0], "effective_policy_definition") {
				t.Errorf("asked for %s", (*uris)[0])
			}
			if rk, ok := qs[2].Arguments.String("x-dead-letter-routing-key"); !ok || rk != "commands" {
				t.Errorf("delay queue arguments %v", qs[2].Arguments)
			}
			if ttl, ok := qs[2].Arguments.Int("x-message-ttl"); !ok || ttl != 1000 {
				t.Errorf("x-message-ttl = %d, %v", ttl, ok)
			}
			v, err := c.Version(context.Background())
			if err != nil || v != tt.full {
				t.Errorf("Version = %q, %v; want %s", v, err, tt.full)
			}
		})
	}
}

// TestErrors checks the errors callers branch on: a queue that does not
// exist, a user refused.
func TestErrors(t *testing.T) {
	srv, _ := api(t, "4.0")
	_, err := client(t, srv, "amqp://daemon:p%40ss@rabbitmq/fpmq").Queue(context.Background(), "nope")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("missing queue: %v, want ErrNotFound", err)
	}
	_, err = client(t, srv, "amqp://daemon:wrong@rabbitmq/fpmq").Queue(context.Background(), "commands.dead")
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "management tag") || strings.Contains(err.Error(), "wrong") {
		t.Errorf("refused user: %v, want ErrUnauthorized with a hint and no password", err)
	}
	c, err := Config{ManagementURL: "http://127.0.0.1:1"}.Client("amqp://u:secret@h/v", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Version(context.Background()); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("unreachable API: %v, want an error without the password", err)
	}
}

// TestClient checks where the client goes and as whom, from
// RABBITMQ_MANAGEMENT_URL and AMQP_URL.
func TestClient(t *testing.T) {
	for _, tt := range []struct {
		setting, amqpURL       string
		url, vhost, user, pass string
		off                    bool
		err                    string
	}{
		{"", "amqp://daemon:pw@rabbitmq:5672/fpmq", "http://rabbitmq:15672", "fpmq", "daemon", "pw", false, ""},
		{"", "amqps://daemon:pw@broker.example/fpmq", "https://broker.example:15671", "fpmq", "daemon", "pw", false, ""},
		{"", "amqp://daemon:pw@[::1]:5672/", "http://[::1]:15672", "/", "daemon", "pw", false, ""},
		{"https://admin.example/rabbit/", "amqp://daemon:pw@rabbitmq/fpmq", "https://admin.example/rabbit", "fpmq", "daemon", "pw", false, ""},
		{"http://other:x@rabbitmq:15672", "amqp://daemon:pw@rabbitmq/fpmq", "http://rabbitmq:15672", "fpmq", "other", "x", false, ""},
		{"off", "amqp://daemon:pw@rabbitmq/fpmq", "", "", "", "", true, ""},
		{"OFF", "amqp://daemon:pw@rabbitmq/fpmq", "", "", "", "", true, ""},
		{"rabbitmq:15672", "amqp://daemon:pw@rabbitmq/fpmq", "", "", "", "", false, "RABBITMQ_MANAGEMENT_URL"},
		{"ftp://u:hidden@h", "amqp://daemon:pw@rabbitmq/fpmq", "", "", "", "", false, "RABBITMQ_MANAGEMENT_URL"},
	} {
		c, err := Config{ManagementURL: tt.setting}.Client(tt.amqpURL, nil)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), "hidden") {
				t.Errorf("%q: error %v, want one naming %s without the password", tt.setting, err, tt.err)
			}
		case err != nil:
			t.Errorf("%q, %q: %v", tt.setting, tt.amqpURL, err)
		case tt.off:
			if c != nil {
				t.Errorf("%q: a client, want none", tt.setting)
			}
		case c.URL() != tt.url || c.VHost != tt.vhost || c.user != tt.user || c.password != tt.pass:
			t.Errorf("%q, %q: %s vhost %q as %s:%s, want %s vhost %q as %s:%s", tt.setting, tt.amqpURL, c.URL(), c.VHost, c.user, c.password, tt.url, tt.vhost, tt.user, tt.pass)
		}
	}
}

// TestVHostEscaped checks that the vhost "/" is one path segment, %2F.
func TestVHostEscaped(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.RequestURI
		w.Write([]byte(`{"name":"q","type":"classic","arguments":[],"effective_policy_definition":null}`))
	}))
	defer srv.Close()
	c, err := Config{ManagementURL: srv.URL}.Client("amqp://u:p@h/", nil)
	if err != nil {
		t.Fatal(err)
	}
	q, err := c.Queue(context.Background(), "a b")
	if err != nil {
		t.Fatal(err)
	}
	if got != "/api/queues/%2F/a%20b" {
		t.Errorf("asked for %s, want /api/queues/%%2F/a%%20b", got)
	}
	if q.Arguments == nil || q.Effective == nil {
		t.Errorf("[] and null decode to %v and %v, want empty definitions", q.Arguments, q.Effective)
	}
}

// TestHeadTimestamps reads head_message_timestamp in each form RabbitMQ
// writes it: seconds, "" (3.x without one), null, or left out (quorum).
func TestHeadTimestamps(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/queues/fpmq" || r.URL.Query().Get("columns") != "name,head_message_timestamp" {
			t.Errorf("asked %s", r.RequestURI)
		}
		w.Write([]byte(`[{"name":"commands","head_message_timestamp":1765000000},{"name":"a","head_message_timestamp":""},{"name":"b","head_message_timestamp":null},{"name":"quorum"}]`))
	}))
	defer srv.Close()
	heads, err := client(t, srv, "amqp://daemon:p%40ss@rabbitmq:5672/fpmq").HeadTimestamps(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(heads) != 1 || heads["commands"].Unix() != 1765000000 {
		t.Errorf("heads %v, want commands' only", heads)
	}
}
