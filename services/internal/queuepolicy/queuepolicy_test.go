package queuepolicy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fpmq/fpmq/services/internal/broker"
	"github.com/fpmq/fpmq/services/internal/management"
	"github.com/fpmq/fpmq/services/internal/queuestat"
)

var topology = broker.Topology{Queue: "commands", QueueType: broker.QueueQuorum, DeadQueue: "commands.dead", RetryDelays: []time.Duration{time.Second}, DelayMax: time.Second}

// def decodes a JSON object as the management API gives it.
func def(t *testing.T, s string) management.Definition {
	t.Helper()
	var d management.Definition
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestCheck checks the verdict on each queue for the arguments and
// policies in effect: fpmq's own, the catch-all policy, and other
// policies and keys that undo what fpmq relies on, or do not.
func TestCheck(t *testing.T) {
	const (
		legacyJob  = `{"x-queue-type":"quorum"}`
		argsJob    = `{"x-queue-type":"quorum","x-dead-letter-exchange":"","x-dead-letter-routing-key":"commands.dead"}`
		legacyDead = `{"x-queue-type":"quorum"}`
		argsDead   = `{"x-queue-type":"quorum","x-delivery-limit":1000000}`
		ownJob     = `{"dead-letter-exchange":"","dead-letter-routing-key":"commands.dead"}`
		ownDead    = `{"delivery-limit":1000000}`
		siteLimits = `{"max-length":1000000}`
	)
	for _, tt := range []struct {
		name             string
		major            int
		queueType        string
		role             string
		args, effective  string
		policy, operator string
		want             []string // problem keys
	}{
		{"job queue, fpmq's policy", 4, "quorum", queuestat.RoleJob, legacyJob, ownJob, "fpmq-commands", "", nil},
		{"job queue, catch-all policy, older declaration", 4, "quorum", queuestat.RoleJob, legacyJob, siteLimits, "site-limits", "", []string{"dead-letter-exchange"}},
		{"job queue, catch-all policy, arguments", 4, "quorum", queuestat.RoleJob, argsJob, siteLimits, "site-limits", "", nil},
		{"job queue, a policy with another dead-letter exchange, arguments", 4, "quorum", queuestat.RoleJob, argsJob, `{"dead-letter-exchange":"graveyard"}`, "graveyard", "", nil},
		{"job queue, a policy with another dead-letter exchange", 4, "classic", queuestat.RoleJob, `{}`, `{"dead-letter-exchange":"graveyard"}`, "graveyard", "", []string{"dead-letter-exchange"}},
		{"job queue, dead-letter exchange without routing key", 3, "classic", queuestat.RoleJob, `{}`, `{"dead-letter-exchange":""}`, "half", "", []string{"dead-letter-routing-key"}},
		{"job queue, another routing key", 3, "classic", queuestat.RoleJob, `{}`, `{"dead-letter-exchange":"","dead-letter-routing-key":"elsewhere"}`, "other", "", []string{"dead-letter-routing-key"}},
		{"job queue, drop-head without dead-letter target", 4, "classic", queuestat.RoleJob, `{}`, `{"max-length":10,"overflow":"drop-head"}`, "tight", "", []string{"dead-letter-exchange"}},
		{"job queue, drop-head with the arguments", 4, "classic", queuestat.RoleJob, `{"x-dead-letter-exchange":"","x-dead-letter-routing-key":"commands.dead"}`, `{"max-length":10,"overflow":"drop-head"}`, "tight", "", nil},
		{"job queue, expires", 4, "quorum", queuestat.RoleJob, argsJob, `{"expires":60000}`, "tidy", "", []string{"expires"}},
		{"job queue, no policy at all", 4, "quorum", queuestat.RoleJob, legacyJob, `{}`, "", "", []string{"dead-letter-exchange"}},
		{"dead queue, fpmq's policy", 4, "quorum", queuestat.RoleDead, legacyDead, ownDead, "fpmq-commands-dead", "", nil},
		{"dead queue, catch-all policy, older declaration, RabbitMQ 4", 4, "quorum", queuestat.RoleDead, legacyDead, siteLimits, "site-limits", "", []string{"delivery-limit", "max-length"}},
		{"dead queue, catch-all policy, older declaration, RabbitMQ 3", 3, "quorum", queuestat.RoleDead, legacyDead, siteLimits, "site-limits", "", []string{"max-length"}},
		{"dead queue, catch-all policy, arguments", 4, "quorum", queuestat.RoleDead, argsDead, siteLimits, "site-limits", "", []string{"max-length"}},
		{"dead queue, a policy lowering the delivery limit below the argument", 4, "quorum", queuestat.RoleDead, argsDead, `{"delivery-limit":20}`, "limits", "", []string{"delivery-limit"}},
		{"dead queue, a policy with no delivery limit (-1), RabbitMQ 4", 4, "quorum", queuestat.RoleDead, legacyDead, `{"delivery-limit":-1}`, "unlimited", "", nil},
		{"dead queue, an operator policy's delivery limit", 4, "quorum", queuestat.RoleDead, argsDead, `{"delivery-limit":50}`, "fpmq-commands-dead", "cap", []string{"delivery-limit"}},
		{"dead queue, no policy, RabbitMQ 3", 3, "quorum", queuestat.RoleDead, legacyDead, `{}`, "", "", nil},
		{"dead queue, no policy, RabbitMQ 4", 4, "quorum", queuestat.RoleDead, legacyDead, `{}`, "", "", []string{"delivery-limit"}},
		{"dead queue, no policy, version unknown", 0, "quorum", queuestat.RoleDead, legacyDead, `{}`, "", "", []string{"delivery-limit"}},
		{"dead queue, classic, no policy", 4, "classic", queuestat.RoleDead, `{}`, `{}`, "", "", nil},
		{"dead queue, length limit with reject-publish", 4, "classic", queuestat.RoleDead, `{}`, `{"max-length":10,"overflow":"reject-publish"}`, "bounded", "", nil},
		{"dead queue, classic: its overflow argument wins", 4, "classic", queuestat.RoleDead, `{"x-overflow":"reject-publish"}`, `{"max-length":10,"overflow":"drop-head"}`, "bounded", "", nil},
		{"dead queue, quorum: the policy's overflow wins", 4, "quorum", queuestat.RoleDead, `{"x-queue-type":"quorum","x-delivery-limit":1000000,"x-overflow":"reject-publish"}`, `{"max-length":10,"overflow":"drop-head"}`, "bounded", "", []string{"max-length"}},
		{"dead queue, bytes limit", 4, "classic", queuestat.RoleDead, `{}`, `{"max-length-bytes":1048576}`, "bounded", "", []string{"max-length-bytes"}},
		{"dead queue, TTL", 4, "classic", queuestat.RoleDead, `{}`, `{"message-ttl":86400000}`, "ttl", "", []string{"message-ttl"}},
		{"retry queue, catch-all policy", 4, "quorum", queuestat.RoleRetry, `{"x-queue-type":"quorum","x-dead-letter-exchange":"","x-dead-letter-routing-key":"commands"}`, siteLimits, "site-limits", "", nil},
		{"delay queue, expires", 4, "classic", queuestat.RoleDelay, `{"x-message-ttl":1000,"x-dead-letter-exchange":"","x-dead-letter-routing-key":"commands"}`, `{"expires":3600000}`, "tidy", "", []string{"expires"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			names := map[string]string{}
			for _, q := range queuestat.Queues(topology) {
				names[q.Role] = q.Name
			}
			q := management.Queue{Name: names[tt.role], Type: tt.queueType, Policy: tt.policy, OperatorPolicy: tt.operator,
				Arguments: def(t, tt.args), Effective: def(t, tt.effective)}
			verdicts := Check(topology, Broker{Major: tt.major}, []management.Queue{q})
			i := slices.IndexFunc(verdicts, func(v Verdict) bool { return v.Name == q.Name })
			v := verdicts[i]
			if got := v.Keys(); !slices.Equal(got, tt.want) {
				t.Errorf("problems %v, want %v: %+v", got, tt.want, v.Problems)
			}
			if v.OK() != (len(tt.want) == 0) || v.Policy != tt.policy || v.Role != tt.role {
				t.Errorf("verdict %+v", v)
			}
			if !v.OK() && !strings.Contains(Fix(topology, v), q.Name) {
				t.Errorf("Fix = %q, names not the queue", Fix(topology, v))
			}
			for _, other := range verdicts {
				if other.Name != q.Name && !other.Missing {
					t.Errorf("queue %s, absent from the API's answer, is not missing", other.Name)
				}
			}
		})
	}
}

// TestCheckRealAnswers checks the verdicts on what RabbitMQ 4.0 and 3.10
// answered (management/testdata): on 4.0, quorum queues declared as older
// versions did, under the catch-all policy; on 3.10, classic queues under
// fpmq's own policies (a classic queue takes no delivery-limit, so the
// dead-letter queue's policy does not apply to it, and needs not).
func TestCheckRealAnswers(t *testing.T) {
	for _, tt := range []struct {
		version string
		major   int
		want    map[string][]string // problem keys by queue; nil: OK
	}{
		{"4.0", 4, map[string][]string{"commands": {"dead-letter-exchange"}, "commands.dead": {"delivery-limit", "max-length"}}},
		{"3.10", 3, map[string][]string{}},
	} {
		t.Run(tt.version, func(t *testing.T) {
			b, err := os.ReadFile("../management/testdata/rabbitmq-" + tt.version + "-queues.json")
			if err != nil {
				t.Fatal(err)
			}
			var qs []management.Queue
			if err := json.Unmarshal(b, &qs); err != nil {
				t.Fatal(err)
			}
			for _, v := range Check(topology, Broker{Major: tt.major}, qs) {
				if v.Role == queuestat.RoleRetry {
					if !v.Missing {
						t.Errorf("%s: not missing", v.Name)
					}
					continue
				}
				if got := v.Keys(); !slices.Equal(got, tt.want[v.Name]) || v.Unknown {
					t.Errorf("%s: problems %v (unknown %v), want %v", v.Name, got, v.Unknown, tt.want[v.Name])
				}
			}
		})
	}
}

// TestCheckUnreported checks a queue RabbitMQ has not reported the
// policies of yet: nothing is said of it, and daemon dead does not read a
// quorum one.
func TestCheckUnreported(t *testing.T) {
	q := management.Queue{Name: "commands.dead", Type: "quorum", Arguments: management.Definition{"x-queue-type": "quorum"}}
	verdicts := Check(topology, Broker{Major: 4}, []management.Queue{q})
	if v := verdicts[len(verdicts)-1]; !v.Unknown || v.Known() || v.OK() || len(v.Problems) != 0 {
		t.Errorf("verdict %+v, want unknown", v)
	}
	api := &fakeAPI{version: "4.0.5", queue: map[string]any{"name": "commands.dead", "type": "quorum", "arguments": map[string]any{"x-queue-type": "quorum"}}}
	c := newAPI(t, api)
	ctx, cancel := context.WithTimeout(context.Background(), 2*reportPoll)
	defer cancel()
	if err := CheckDead(ctx, c, "commands.dead"); !errors.Is(err, ErrUnverified) || !strings.Contains(err.Error(), "try again shortly") {
		t.Errorf("CheckDead: %v, want ErrUnverified", err)
	}

	// Reported while CheckDead waits: it goes on with what was reported.
	time.AfterFunc(reportPoll/2, func() {
		api.set(map[string]any{"name": "commands.dead", "type": "quorum", "arguments": map[string]any{"x-queue-type": "quorum"},
			"effective_policy_definition": map[string]any{"delivery-limit": 1000000}, "policy": "fpmq-commands-dead"})
	})
	if err := CheckDead(context.Background(), c, "commands.dead"); err != nil {
		t.Errorf("CheckDead once reported: %v, want nil", err)
	}
}

func TestDeliveryLimit(t *testing.T) {
	for _, tt := range []struct {
		major      int
		args, pol  string
		want       int64
		wantLimits bool
	}{
		{4, `{}`, `{}`, 20, true},
		{3, `{}`, `{}`, 0, false},
		{4, `{"x-delivery-limit":1000000}`, `{}`, 1000000, true},
		{4, `{"x-delivery-limit":1000000}`, `{"delivery-limit":20}`, 20, true},
		{3, `{"x-delivery-limit":5}`, `{"delivery-limit":20}`, 5, true},
		{4, `{"x-delivery-limit":-1}`, `{"delivery-limit":20}`, 20, true},
		{4, `{"x-delivery-limit":-1}`, `{}`, 0, false},
		{4, `{}`, `{"delivery-limit":-1}`, 0, false},
		{3, `{}`, `{"delivery-limit":-1}`, 0, true},
		{4, `{}`, `{"delivery-limit":"30"}`, 30, true},
	} {
		q := management.Queue{Type: "quorum", Arguments: def(t, tt.args), Effective: def(t, tt.pol)}
		got, ok := DeliveryLimit(q, Broker{Major: tt.major})
		if got != tt.want || ok != tt.wantLimits {
			t.Errorf("RabbitMQ %d, arguments %s, policy %s: %d, %v; want %d, %v", tt.major, tt.args, tt.pol, got, ok, tt.want, tt.wantLimits)
		}
	}
	if MajorVersion("4.0.5") != 4 || MajorVersion("3.10.8") != 3 || MajorVersion("") != 0 {
		t.Error("MajorVersion")
	}
}

// fakeAPI serves a version and one queue, as the management API does; the
// queue can change between requests. Unauthorized answers 401.
type fakeAPI struct {
	mu           sync.Mutex
	version      string
	queue        map[string]any
	unauthorized bool
}

func (f *fakeAPI) set(queue map[string]any) {
	f.mu.Lock()
	f.queue = queue
	f.mu.Unlock()
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unauthorized {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	switch {
	case r.URL.Path == "/api/overview":
		json.NewEncoder(w).Encode(map[string]string{"rabbitmq_version": f.version})
	case r.URL.Path == "/api/queues/fpmq":
		json.NewEncoder(w).Encode([]any{f.queue})
	case r.URL.Path == "/api/queues/fpmq/"+f.queue["name"].(string):
		json.NewEncoder(w).Encode(f.queue)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func newAPI(t *testing.T, f *fakeAPI) *management.Client {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := management.Config{ManagementURL: srv.URL}.Client("amqp://operator:pw@rabbitmq/fpmq", nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCheckDead checks when "daemon dead" may read: only where no read
// can make RabbitMQ drop a message.
func TestCheckDead(t *testing.T) {
	quorum := func(args, effective map[string]any, policy string) map[string]any {
		return map[string]any{"name": "commands.dead", "type": "quorum", "arguments": args, "effective_policy_definition": effective, "policy": policy}
	}
	for _, tt := range []struct {
		name    string
		version string
		queue   map[string]any
		want    error // nil: may read
		says    string
	}{
		{"classic", "4.0.5", map[string]any{"name": "commands.dead", "type": "classic", "arguments": map[string]any{}, "effective_policy_definition": []any{}}, nil, ""},
		{"quorum, fpmq's policy", "4.0.5", quorum(map[string]any{"x-queue-type": "quorum"}, map[string]any{"delivery-limit": 1000000}, "fpmq-commands-dead"), nil, ""},
		{"quorum, the argument under a catch-all policy", "4.0.5", quorum(map[string]any{"x-delivery-limit": 1000000}, map[string]any{"max-length": 1000000}, "site-limits"), nil, ""},
		{"quorum, catch-all policy, RabbitMQ 4's default", "4.0.5", quorum(map[string]any{"x-queue-type": "quorum"}, map[string]any{"max-length": 1000000}, "site-limits"),
			ErrLimited, `delivery limit of 20 (RabbitMQ 4's default, as nothing sets one: policy "site-limits")`},
		{"quorum, catch-all policy, RabbitMQ 3", "3.10.8", quorum(map[string]any{"x-queue-type": "quorum"}, map[string]any{"max-length": 1000000}, "site-limits"), nil, ""},
		{"quorum, a policy's limit", "3.10.8", quorum(map[string]any{"x-delivery-limit": 1000000}, map[string]any{"delivery-limit": 25}, "limits"),
			ErrLimited, `Policy "limits" applies instead of fpmq's`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newAPI(t, &fakeAPI{version: tt.version, queue: tt.queue})
			err := CheckDead(context.Background(), c, "commands.dead")
			if tt.want == nil {
				if err != nil {
					t.Errorf("CheckDead: %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("CheckDead: %v, want %v saying %q", err, tt.want, tt.says)
			}
		})
	}

	if err := CheckDead(context.Background(), nil, "commands.dead"); !errors.Is(err, ErrUnverified) || !strings.Contains(err.Error(), "RABBITMQ_MANAGEMENT_URL is off") {
		t.Errorf("API off: %v, want ErrUnverified", err)
	}
	c := newAPI(t, &fakeAPI{unauthorized: true})
	if err := CheckDead(context.Background(), c, "commands.dead"); !errors.Is(err, ErrUnverified) || !errors.Is(err, management.ErrUnauthorized) {
		t.Errorf("API refuses the user: %v, want ErrUnverified wrapping ErrUnauthorized", err)
	}
	c = newAPI(t, &fakeAPI{version: "4.0.5", queue: map[string]any{"name": "other"}})
	if err := CheckDead(context.Background(), c, "commands.dead"); !errors.Is(err, management.ErrNotFound) {
		t.Errorf("no such queue: %v, want ErrNotFound", err)
	}
}

// TestWatcher checks that the watcher logs a problem once, logs its end
// once, and keeps the verdicts for the metrics.
func TestWatcher(t *testing.T) {
	api := &fakeAPI{version: "4.0.5", queue: map[string]any{"name": "commands.dead", "type": "quorum",
		"arguments": map[string]any{"x-queue-type": "quorum"}, "effective_policy_definition": map[string]any{"delivery-limit": 1000000}, "policy": "fpmq-commands-dead"}}
	var logs bytes.Buffer
	w := &Watcher{Client: newAPI(t, api), Topology: topology, Log: zerolog.New(&logs)}
	ctx := context.Background()

	// Just declared: RabbitMQ has not reported its policies yet.
	reported := api.queue
	api.set(map[string]any{"name": "commands.dead", "type": "quorum", "arguments": map[string]any{"x-queue-type": "quorum"}})
	w.Check(ctx)
	if verdicts, _ := w.Last(); !verdicts[len(verdicts)-1].Unknown || logs.Len() != 0 {
		t.Fatalf("unreported queue: %+v, logged %s", verdicts, logs.String())
	}
	api.set(reported)
	w.Check(ctx)
	verdicts, checked := w.Last()
	dead := verdicts[len(verdicts)-1]
	if !checked || dead.Name != "commands.dead" || !dead.OK() {
		t.Fatalf("Last = %+v, %v", verdicts, checked)
	}
	if !verdicts[0].Missing {
		t.Errorf("the job queue, absent from the answer, is %+v", verdicts[0])
	}

	api.set(map[string]any{"name": "commands.dead", "type": "quorum",
		"arguments": map[string]any{"x-queue-type": "quorum"}, "effective_policy_definition": map[string]any{"max-length": 1000000}, "policy": "site-limits"})
	logs.Reset()
	w.Check(ctx)
	w.Check(ctx)
	out := logs.String()
	if n := strings.Count(out, `"level":"error"`); n != 1 {
		t.Errorf("%d error lines for one change, want 1:\n%s", n, out)
	}
	for _, want := range []string{`"queue":"commands.dead"`, `"policy":"site-limits"`, "delivery-limit: RabbitMQ drops a dead letter delivered 20 times", "POLICY_PRIORITY"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if verdicts, _ := w.Last(); verdicts[len(verdicts)-1].OK() {
		t.Error("the verdict says OK")
	}

	api.set(map[string]any{"name": "commands.dead", "type": "quorum",
		"arguments": map[string]any{"x-queue-type": "quorum"}, "effective_policy_definition": map[string]any{"delivery-limit": 1000000}, "policy": "fpmq-commands-dead"})
	logs.Reset()
	w.Check(ctx)
	w.Check(ctx)
	if out := logs.String(); strings.Count(out, "again what fpmq relies on") != 1 || strings.Contains(out, `"level":"error"`) {
		t.Errorf("after the fix, want one info line:\n%s", out)
	}

	api.mu.Lock()
	api.unauthorized = true
	api.mu.Unlock()
	logs.Reset()
	w.Check(ctx)
	w.Check(ctx)
	if _, checked := w.Last(); checked {
		t.Error("Last says checked while the API refuses")
	}
	if out := logs.String(); strings.Count(out, `"level":"warn"`) != 1 || !strings.Contains(out, "management tag") {
		t.Errorf("want one warning with a hint:\n%s", out)
	}
}
