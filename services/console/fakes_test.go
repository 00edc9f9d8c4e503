package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/rs/zerolog"

	"github.com/fpmq/fpmq/services/internal/admin"
	"github.com/fpmq/fpmq/services/internal/deadletter"
)

// The passwords of the test server's users.
const (
	operatorPassword = "operator-password-1"
	viewerPassword   = "viewer-password-22"
)

// fakeDaemons is an overviewSource that records the actions asked of it.
type fakeDaemons struct {
	mu      sync.Mutex
	snap    snapshot
	jobs    []jobsAnswer
	actions []string // "pause QUEUE REASON", "resume QUEUE"
}

func (f *fakeDaemons) Jobs(context.Context) []jobsAnswer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.jobs)
}

func (f *fakeDaemons) Snapshot(context.Context) snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap
}

func (f *fakeDaemons) Pause(_ context.Context, queue, reason string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.actions = append(f.actions, "pause "+queue+" "+reason)
	return []string{"http://daemon:9090"}, nil
}

func (f *fakeDaemons) Resume(_ context.Context, queue string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.actions = append(f.actions, "resume "+queue)
	return []string{"http://daemon:9090"}, nil
}

func (f *fakeDaemons) done() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.actions)
}

// fakeDead is a deadSource over a slice of jobs, in queue order.
type fakeDead struct {
	mu       sync.Mutex
	jobs     []deadletter.Job
	replayed []string
	purged   []string
}

func (f *fakeDead) Page(_ context.Context, _ string, flt deadletter.Filter, skip, limit, _ int) (deadPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := deadPage{Total: len(f.jobs), Read: len(f.jobs)}
	var matched []deadletter.Job
	for _, j := range f.jobs {
		if flt.Match(j, time.Now()) {
			matched = append(matched, j)
		}
	}
	if skip < len(matched) {
		matched = matched[skip:]
		if len(matched) > limit {
			matched, p.More = matched[:limit], true
		}
		p.Jobs = matched
	}
	return p, nil
}

func (f *fakeDead) Show(_ context.Context, _ string, id string) (deadletter.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, j := range f.jobs {
		if j.ID == id {
			return j, nil
		}
	}
	return deadletter.Job{}, errJobNotFound
}

func (f *fakeDead) Matching(_ context.Context, _ string, flt deadletter.Filter, most int) ([]deadletter.Job, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []deadletter.Job
	n := 0
	for _, j := range f.jobs {
		if flt.Match(j, time.Now()) {
			n++
			if len(out) < most {
				out = append(out, j)
			}
		}
	}
	return out, n, nil
}

// take removes the jobs flt matches and returns their ids.
func (f *fakeDead) take(flt deadletter.Filter) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	f.jobs = slices.DeleteFunc(f.jobs, func(j deadletter.Job) bool {
		if flt.Match(j, time.Now()) {
			ids = append(ids, j.ID)
			return true
		}
		return false
	})
	return ids
}

func (f *fakeDead) Replay(_ context.Context, _ string, flt deadletter.Filter, _ deadletter.Rate, _ deadletter.Progress) (deadletter.Result, error) {
	ids := f.take(flt)
	f.mu.Lock()
	f.replayed = append(f.replayed, ids...)
	f.mu.Unlock()
	return deadletter.Result{Matched: len(ids), Done: len(ids)}, nil
}

func (f *fakeDead) Purge(_ context.Context, _ string, flt deadletter.Filter, _ deadletter.Progress) (deadletter.Result, error) {
	ids := f.take(flt)
	f.mu.Lock()
	f.purged = append(f.purged, ids...)
	f.mu.Unlock()
	return deadletter.Result{Matched: len(ids), Done: len(ids)}, nil
}

// deadJob makes a dead job as the daemon writes one.
func deadJob(id, reason string) deadletter.Job {
	return deadletter.JobOf(amqp.Delivery{
		MessageId: id, Type: "send-mail", Timestamp: time.Now().Add(-time.Hour),
		Headers: amqp.Table{"x-fpmq-reason": reason, "x-fpmq-attempts": int64(3), "x-fpmq-queue": "commands", "x-fpmq-last-error": "boom <script>"},
		Body:    []byte(`{"number":` + strings.TrimPrefix(id, "m") + `}`),
	})
}

// intp returns a pointer to n.
func intp(n int) *int { return &n }

// healthySnapshot is one daemon of the route commands, consuming.
func healthySnapshot() snapshot {
	return snapshot{At: time.Now(), Daemons: []daemonView{{
		Addr: "http://daemon:9090",
		Status: admin.Status{Routes: []admin.Route{{
			Queue: "commands", Pause: admin.Pause{State: "consuming", Running: 2},
			Ready: intp(7), Dead: intp(0), Delayed: intp(1), SucceededPerSecond: 0.5,
		}}},
		Metrics: daemonMetrics{PoolBusy: 2, PoolChildren: 6, PoolUp: true, Connected: true},
	}}}
}

// testConsole is a console server on fakes, and a client of it.
type testConsole struct {
	t       *testing.T
	srv     *httptest.Server
	daemons *fakeDaemons
	dead    *fakeDead
	console *server
}

func newTestConsole(t *testing.T) *testConsole {
	t.Helper()
	c := config{
		OperatorUser: "alice", OperatorPassword: operatorPassword,
		ViewerUser: "victor", ViewerPassword: viewerPassword,
		SessionTTL: time.Hour, RefreshInterval: 3 * time.Second, DeadPageSize: 2, DeadScan: 100,
		HistoryStep: 15 * time.Second, HistoryKeep: 6 * time.Hour,
	}
	tc := &testConsole{t: t, daemons: &fakeDaemons{snap: healthySnapshot()}, dead: &fakeDead{}}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := newServer(ctx, c, tc.daemons, tc.dead, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	tc.console = s
	tc.srv = httptest.NewServer(s.handler())
	t.Cleanup(func() {
		tc.srv.Close()
		cancel()
		s.tasks.wait()
	})
	return tc
}

// client returns an HTTP client with its own cookies that does not
// follow redirects.
func (tc *testConsole) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// signIn returns a client signed in as user, and its CSRF token.
func (tc *testConsole) signIn(user, password string) (*http.Client, string) {
	tc.t.Helper()
	c := tc.client()
	resp, err := c.PostForm(tc.srv.URL+"/signin", url.Values{"user": {user}, "password": {password}})
	if err != nil {
		tc.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		tc.t.Fatalf("sign in as %s: %s, want 303", user, resp.Status)
	}
	_, body := tc.get(c, "/")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		tc.t.Fatalf("no CSRF token on the overview:\n%s", body)
	}
	return c, m[1]
}

// get requests path and returns the answer's status and body.
func (tc *testConsole) get(c *http.Client, path string) (int, string) {
	tc.t.Helper()
	resp, err := c.Get(tc.srv.URL + path)
	if err != nil {
		tc.t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, readAll(tc.t, resp)
}

// post posts form to path and returns the answer's status and body.
func (tc *testConsole) post(c *http.Client, path string, form url.Values) (int, string) {
	tc.t.Helper()
	resp, err := c.PostForm(tc.srv.URL+path, form)
	if err != nil {
		tc.t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, readAll(tc.t, resp)
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testLogger writes to the test's log.
func testLogger(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t))
}
