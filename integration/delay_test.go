//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fpmq/fpmq/integration/stack"
)

// requestTimeout is the REQUEST_TIMEOUT of the daemons here: a job started
// at HTTP_X_DEADLINE minus it.
const requestTimeout = 60 * time.Second

// echoRun is one run of misbehave.php's "echo", as it logged it.
type echoRun struct {
	tag       string    // the job's "tag" field
	started   time.Time // HTTP_X_DEADLINE - requestTimeout
	due       time.Time // x-fpmq-due; zero if none
	published time.Time // HTTP_X_TIMESTAMP, to the second
	server    map[string]string
}

// echoRuns returns the runs of "echo" jobs with a tag, in the order they
// started to log.
func (s *testStack) echoRuns(t *testing.T) []echoRun {
	t.Helper()
	var runs []echoRun
	for _, r := range s.misbehaveLines(t) {
		var post map[string]any
		if r.Do != "echo" || json.Unmarshal(r.Post, &post) != nil {
			continue
		}
		tag, _ := post["tag"].(string)
		if tag == "" {
			continue
		}
		run := echoRun{tag: tag, server: r.Server}
		if f, err := strconv.ParseFloat(r.Server["HTTP_X_DEADLINE"], 64); err == nil {
			run.started = time.UnixMilli(int64(math.Round(f * 1000))).Add(-requestTimeout)
		}
		if ms, err := strconv.ParseInt(r.Server["HTTP_X_HEADER_X_FPMQ_DUE"], 10, 64); err == nil {
			run.due = time.UnixMilli(ms)
		}
		if sec, err := strconv.ParseInt(r.Server["HTTP_X_TIMESTAMP"], 10, 64); err == nil {
			run.published = time.Unix(sec, 0)
		}
		runs = append(runs, run)
	}
	return runs
}

// runsOf returns the runs of the job tagged tag.
func runsOf(runs []echoRun, tag string) []echoRun {
	var got []echoRun
	for _, r := range runs {
		if r.tag == tag {
			got = append(got, r)
		}
	}
	return got
}

// awaitRuns waits until each of tags ran and returns the runs then.
func (s *testStack) awaitRuns(t *testing.T, timeout time.Duration, tags ...string) []echoRun {
	t.Helper()
	var runs []echoRun
	eventually(t, timeout, "jobs "+strings.Join(tags, ", ")+" ran", func() bool {
		runs = s.echoRuns(t)
		for _, tag := range tags {
			if len(runsOf(runs, tag)) == 0 {
				return false
			}
		}
		return true
	})
	return runs
}

// echoJob is the --json of an "echo" job tagged tag.
func echoJob(tag string) string { return `{"do":"echo","tag":"` + tag + `"}` }

// checkOnTime checks that the job tagged tag ran once, no earlier than due
// and within 2 s after, and that it was due delay after it was published.
func checkOnTime(t *testing.T, runs []echoRun, tag string, delay time.Duration) {
	t.Helper()
	rs := runsOf(runs, tag)
	if len(rs) != 1 {
		t.Errorf("%s ran %d times, want once", tag, len(rs))
		return
	}
	r := rs[0]
	if r.due.IsZero() || r.started.IsZero() {
		t.Fatalf("%s: no due time or deadline among %v", tag, r.server)
	}
	// HTTP_X_TIMESTAMP has whole seconds.
	if wait := r.due.Sub(r.published); wait < delay || wait >= delay+time.Second {
		t.Errorf("%s: due %s after its timestamp, want %s", tag, wait, delay)
	}
	if late := r.started.Sub(r.due); late < 0 || late > 2*time.Second {
		t.Errorf("%s: started %s after it was due, want 0 to 2s", tag, late)
	}
}

// TestDelay publishes delayed jobs with the caller, as the caller user, to
// a daemon that runs as the daemon user: the delay queues are the daemon's,
// held by RabbitMQ alone.
func TestDelay(t *testing.T) {
	s := newStack(t, stackOptions{
		noDaemon: true,
		phpBinds: []string{filepath.Join(repoRoot(t), "integration", "testdata", "php") + ":" + testScripts + ":ro"},
	})
	env := map[string]string{"SCRIPT_FILENAME": misbehave, "REQUEST_TIMEOUT": requestTimeout.String()}
	s.daemon = s.startDaemon(t, env)
	caller := func(t *testing.T, args ...string) {
		t.Helper()
		if code, out := s.runCaller(t, nil, args...); code != 0 {
			t.Fatalf("caller %q: exit %d:\n%s", args, code, out)
		}
	}

	t.Run("jobs run when due, in the order they are due, and wait in sight", func(t *testing.T) {
		caller(t, "--delay", "10s", "--json", echoJob("ten"))
		caller(t, "--delay", "3s", "--json", echoJob("three"))
		caller(t, "--delay", "5s", "--json", echoJob("five"))
		eventually(t, 8*time.Second, `fpmq_queue_messages_ready{role="delay"} shows the waiting jobs`, func() bool {
			for series, v := range scrape(t, s.daemon) {
				if strings.HasPrefix(series, "fpmq_queue_messages_ready{") && strings.Contains(series, `role="delay"`) && v > 0 {
					return true
				}
			}
			return false
		})
		runs := s.awaitRuns(t, settleTimeout, "ten", "five", "three")
		checkOnTime(t, runs, "ten", 10*time.Second)
		checkOnTime(t, runs, "five", 5*time.Second)
		checkOnTime(t, runs, "three", 3*time.Second)
		if three, ten := runsOf(runs, "three"), runsOf(runs, "ten"); len(three) == 1 && len(ten) == 1 && !three[0].started.Before(ten[0].started) {
			t.Errorf("the 3 s job published after the 10 s one started at %s, not before it (%s)", three[0].started, ten[0].started)
		}
		// The 10 s job comes out of the 8 s queue 2 s early: the daemon
		// sends it on to the 1 s queue. The others come out within a
		// second of being due and are waited for.
		if m := scrape(t, s.daemon); m[series("fpmq_jobs_delayed_total", jobQueue)] < 1 || m[series("fpmq_jobs_retried_total", jobQueue)] != 0 {
			t.Errorf("delayed %g, retried %g; want the 10 s job sent on once at least and no attempt failed", m[series("fpmq_jobs_delayed_total", jobQueue)], m[series("fpmq_jobs_retried_total", jobQueue)])
		}
	})

	t.Run("a waiting job survives a restart of every component", func(t *testing.T) {
		caller(t, "--delay", "20s", "--json", echoJob("restart"))
		ctx := context.Background()
		timeout := stack.StopTimeout
		for _, c := range []struct {
			name string
			stop func() error
		}{
			{"daemon", func() error { return s.daemon.Stop(ctx, &timeout) }},
			{"php-fpm", func() error { return s.PHP.Stop(ctx, &timeout) }},
			{"rabbitmq", func() error { return s.RabbitMQ.Stop(ctx, &timeout) }},
		} {
			if err := c.stop(); err != nil {
				t.Fatalf("stop %s: %v", c.name, err)
			}
		}
		if err := s.RabbitMQ.Start(ctx); err != nil {
			t.Fatalf("start rabbitmq: %v", err)
		}
		s.refreshEndpoint(t)
		if err := s.PHP.Start(ctx); err != nil {
			t.Fatalf("start php-fpm: %v", err)
		}
		if err := s.daemon.Start(ctx); err != nil {
			t.Fatalf("start the daemon: %v", err)
		}
		runs := s.awaitRuns(t, 2*time.Minute, "restart")
		rs := runsOf(runs, "restart")
		if len(rs) != 1 || rs[0].started.Before(rs[0].due) {
			t.Fatalf("restart: %d runs %+v; want one, once due", len(rs), rs)
		}
		// A duplicate would come within the prefetch's redelivery: give it
		// the time of a retry.
		time.Sleep(3 * time.Second)
		if n := len(runsOf(s.echoRuns(t), "restart")); n != 1 {
			t.Errorf("restart ran %d times, want once", n)
		}
	})
}

// TestCallerJobs checks that a named job with a JSON body and a header
// reaches the worker as such.
func TestCallerJobs(t *testing.T) {
	s := newStack(t, stackOptions{
		noDaemon: true,
		phpBinds: []string{filepath.Join(repoRoot(t), "integration", "testdata", "php") + ":" + testScripts + ":ro"},
	})
	s.daemon = s.startDaemon(t, map[string]string{"SCRIPT_FILENAME": misbehave})
	code, out := s.runCaller(t, nil, "--type", "send-mail", "--json", `{"do":"echo","tag":"mail","to":"a@b"}`, "--header", "tenant=acme")
	if code != 0 || !strings.Contains(out, ` [x] Message sent: {"do":"echo","tag":"mail","to":"a@b"}`) {
		t.Fatalf("caller: exit %d:\n%s", code, out)
	}
	r := runsOf(s.awaitRuns(t, settleTimeout, "mail"), "mail")[0]
	if r.server["HTTP_X_JOB_NAME"] != "send-mail" || r.server["HTTP_X_HEADER_TENANT"] != "acme" {
		t.Errorf("the worker saw %v; want HTTP_X_JOB_NAME send-mail and HTTP_X_HEADER_TENANT acme", r.server)
	}
	var post map[string]string
	recs := s.misbehaveLines(t)
	if err := json.Unmarshal(recs[len(recs)-1].Post, &post); err != nil || post["to"] != "a@b" {
		t.Errorf("the worker's $_POST %s, want to=a@b", recs[len(recs)-1].Post)
	}
	if code, out := s.runCaller(t, nil, "--json", "[1]"); code != 2 || !strings.Contains(out, "not an object") {
		t.Errorf("caller --json [1]: exit %d, want 2:\n%s", code, out)
	}
}

// TestPriority checks that with AMQP_MAX_PRIORITY a job published with a
// higher priority runs before those already waiting.
func TestPriority(t *testing.T) {
	s := newStack(t, stackOptions{
		noDaemon: true,
		phpBinds: []string{filepath.Join(repoRoot(t), "integration", "testdata", "php") + ":" + testScripts + ":ro"},
	})
	const queue = "prio"
	env := map[string]string{"AMQP_QUEUE": queue, "AMQP_URL": s.URL(rabbitUser), "AMQP_MAX_PRIORITY": "10"}
	for _, job := range []struct{ tag, priority string }{{"low1", "1"}, {"low2", "1"}, {"low3", "1"}, {"high", "9"}} {
		if code, out := s.runCaller(t, env, "--priority", job.priority, "--json", echoJob(job.tag)); code != 0 {
			t.Fatalf("caller: exit %d:\n%s", code, out)
		}
	}
	s.routeDaemon(t, queue, map[string]string{"SCRIPT_FILENAME": misbehave, "CONCURRENCY": "1", "AMQP_MAX_PRIORITY": "10"})
	runs := s.awaitRuns(t, settleTimeout, "low1", "low2", "low3", "high")
	var order []string
	for _, r := range runs {
		order = append(order, r.tag)
	}
	if len(order) != 4 || order[0] != "high" {
		t.Errorf("jobs ran in the order %v, want high first", order)
	}
}
