//go:build integration

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/fpmq/fpmq/integration/stack"
)

// fixedFile makes misbehave.php's "broken" jobs succeed once it exists in
// php-fpm's /tmp: the cause of their failure is fixed.
const fixedFile = "/tmp/fpmq-fixed"

// deadJob is a job the test has a real daemon dead-letter, and how.
type deadJob struct {
	id, body string
	reason   string
	attempts int
}

// TestDeadLetterCommands drives the operators' commands (daemon dead, run
// as compose's ops service runs it: the daemon's image, the operator user,
// no terminal) on jobs that a real daemon dead-lettered: list and show
// leave the queue as it was; replay by id, by reason and of all brings
// jobs back at attempt 1 and the daemon runs them; purge deletes exactly
// the chosen ones; a replay killed midway loses nothing and duplicates at
// most one job.
func TestDeadLetterCommands(t *testing.T) {
	s := newStack(t, stackOptions{
		noDaemon: true,
		phpBinds: []string{filepath.Join(repoRoot(t), "integration", "testdata", "php") + ":" + testScripts + ":ro"},
	})
	// One job at a time, so that jobs die in the order they are published.
	s.startDaemon(t, map[string]string{"SCRIPT_FILENAME": misbehave, "MAX_ATTEMPTS": "2", "CONCURRENCY": "1"})

	jobs := []deadJob{
		{"exhausted-1", `{"do":"broken"}`, "attempts-exhausted", 2},
		{"rejected-1", `{"do":"broken","status":"422"}`, "rejected", 1},
		{"malformed-1", `not json`, "malformed", 1},
		{"exhausted-2", `{"do":"broken"}`, "attempts-exhausted", 2},
		{"rejected-2", `{"do":"broken","status":"422"}`, "rejected", 1},
		{"exhausted-3", `{"do":"broken"}`, "attempts-exhausted", 2},
		{"malformed-2", `not json`, "malformed", 1},
		{"rejected-3", `{"do":"broken","status":"422"}`, "rejected", 1},
	}
	for i, j := range jobs {
		s.publishMessages(t, jobQueue, stack.Job(j.id, []byte(j.body)))
		eventually(t, settleTimeout, j.id+" dead-lettered", func() bool { return s.queue(t, deadQueue).Ready == i+1 })
	}
	ids := func(js []deadJob) []string {
		var out []string
		for _, j := range js {
			out = append(out, j.id)
		}
		return out
	}

	t.Run("list leaves the queue as it was", func(t *testing.T) {
		code, out, errOut := s.dead(t, "list")
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		if code != 0 || errOut != "" || len(lines) != len(jobs)+1 || !strings.HasPrefix(lines[0], "ID ") {
			t.Fatalf("dead list: exit %d, stderr %q, stdout:\n%s\nwant a heading and %d lines, nothing on stderr without a terminal", code, errOut, out, len(jobs))
		}
		for i, j := range jobs {
			f := strings.Fields(lines[i+1])
			if len(f) < 5 || f[0] != j.id || f[2] != j.reason {
				t.Errorf("line %d: %q, want %s with reason %s", i+1, lines[i+1], j.id, j.reason)
			}
		}
		// Twice, so that a list that moved or lost messages shows.
		for range 2 {
			got := s.deadList(t)
			if !slices.Equal(summaryIDs(got), ids(jobs)) {
				t.Fatalf("dead list --json: %v, want %v in that order", summaryIDs(got), ids(jobs))
			}
			for i, j := range jobs {
				g := got[i]
				if g.Reason != j.reason || g.Attempts != j.attempts || g.Body != j.body || g.Queue != jobQueue {
					t.Errorf("%s listed as %+v, want reason %s, %d attempts, body %s, from %s", j.id, g, j.reason, j.attempts, j.body, jobQueue)
				}
			}
		}
		if q := s.queue(t, deadQueue); q.Ready != len(jobs) || q.Unacked != 0 || q.Consumers != 0 {
			t.Errorf("after the lists, %s holds %d ready, %d unacked, %d consumers; want %d, 0, 0", deadQueue, q.Ready, q.Unacked, q.Consumers, len(jobs))
		}
		var rejected []deadJob
		for _, j := range jobs {
			if j.reason == "rejected" {
				rejected = append(rejected, j)
			}
		}
		if got := summaryIDs(s.deadList(t, "--reason", "rejected")); !slices.Equal(got, ids(rejected)) {
			t.Errorf("dead list --reason rejected: %v, want %v", got, ids(rejected))
		}
	})

	t.Run("show prints a whole job", func(t *testing.T) {
		code, out, _ := s.dead(t, "show", "exhausted-2")
		for _, want := range []string{`x-fpmq-reason\s+attempts-exhausted`, `x-fpmq-attempts\s+2`, `x-fpmq-last-status\s+500`, `message-id\s+exhausted-2`, `\{"do":"broken"\}`} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("dead show: no %s in:\n%s", want, out)
			}
		}
		if code != 0 {
			t.Errorf("dead show: exit %d", code)
		}
		code, _, errOut := s.dead(t, "show", "no-such-job")
		if code != 1 || !strings.Contains(errOut, `no dead job with id "no-such-job"`) {
			t.Errorf("dead show of an unknown id: exit %d, stderr %q; want 1 and the id named", code, errOut)
		}
		if q := s.queue(t, deadQueue); q.Ready != len(jobs) || q.Unacked != 0 {
			t.Errorf("after show, %s holds %d ready, %d unacked; want %d, 0", deadQueue, q.Ready, q.Unacked, len(jobs))
		}
	})

	// The cause is fixed: from now on the broken jobs succeed.
	if code, out := execIn(t, s.PHP, "touch", fixedFile); code != 0 {
		t.Fatalf("touch %s: exit %d: %s", fixedFile, code, out)
	}

	t.Run("replay by id and by reason brings jobs back at attempt 1, and they run", func(t *testing.T) {
		before := len(s.misbehaveLines(t))
		if code, out, errOut := s.dead(t, "replay", "exhausted-1"); code != 0 || out != "replayed 1 of 1\n" {
			t.Fatalf("dead replay exhausted-1: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		s.awaitFixedRuns(t, before, "exhausted-1")
		if code, out, errOut := s.dead(t, "replay", "--reason", "rejected"); code != 0 || out != "replayed 3 of 3\n" {
			t.Fatalf("dead replay --reason rejected: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		s.awaitFixedRuns(t, before, "exhausted-1", "rejected-1", "rejected-2", "rejected-3")
		want := []string{"malformed-1", "exhausted-2", "exhausted-3", "malformed-2"}
		if got := summaryIDs(s.deadList(t)); !slices.Equal(got, want) {
			t.Errorf("left dead: %v, want %v, in that order", got, want)
		}
	})

	t.Run("purge with --yes deletes exactly the chosen jobs", func(t *testing.T) {
		if code, out, errOut := s.dead(t, "purge", "exhausted-2"); code != 2 || !strings.Contains(errOut, "--yes") {
			t.Errorf("dead purge without --yes and without a terminal: exit %d, stdout %q, stderr %q; want 2, asking for --yes", code, out, errOut)
		}
		if code, out, errOut := s.dead(t, "purge", "--yes", "exhausted-2"); code != 0 || out != "purged 1 of 1\n" {
			t.Errorf("dead purge --yes exhausted-2: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		if code, out, errOut := s.dead(t, "purge", "--reason", "malformed", "--yes"); code != 0 || out != "purged 2 of 2\n" {
			t.Errorf("dead purge --reason malformed --yes: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		if got := summaryIDs(s.deadList(t)); !slices.Equal(got, []string{"exhausted-3"}) {
			t.Errorf("left dead: %v, want only exhausted-3", got)
		}
		if q := s.queue(t, deadQueue); q.Ready != 1 || q.Unacked != 0 {
			t.Errorf("%s holds %d ready, %d unacked; want 1, 0", deadQueue, q.Ready, q.Unacked)
		}
		before := len(s.misbehaveLines(t))
		if code, out, errOut := s.dead(t, "replay", "--all"); code != 0 || out != "replayed 1 of 1\n" {
			t.Fatalf("dead replay --all: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		s.awaitFixedRuns(t, before, "exhausted-3")
		if runs := s.misbehaveRuns(t)["exhausted-2"]; runs != 2 {
			t.Errorf("the purged exhausted-2 ran %d times, want only its 2 attempts before it died", runs)
		}
	})

	t.Run("an interrupted replay loses nothing and duplicates at most one job", func(t *testing.T) {
		if code, out := execIn(t, s.PHP, "rm", "-f", fixedFile); code != 0 {
			t.Fatalf("rm %s: exit %d: %s", fixedFile, code, out)
		}
		const total = 40
		var msgs []amqp.Publishing
		var batch []string
		for i := range total {
			id := fmt.Sprintf("batch-%02d", i)
			batch = append(batch, id)
			msgs = append(msgs, stack.Job(id, []byte(`{"do":"broken","status":"422"}`)))
		}
		s.publishMessages(t, jobQueue, msgs...)
		eventually(t, settleTimeout, fmt.Sprintf("%d jobs dead-lettered", total), func() bool { return s.queue(t, deadQueue).Ready == total })
		if code, out := execIn(t, s.PHP, "touch", fixedFile); code != 0 {
			t.Fatalf("touch %s: exit %d: %s", fixedFile, code, out)
		}

		before := len(s.misbehaveLines(t))
		// 5 a second: 8 s for all, killed after about 2.
		ops := s.run(t, s.Ops, stack.Run{
			Args: []string{"dead", "replay", "--all", "--rate", "5/s"},
			Wait: wait.ForNop(func(context.Context, wait.StrategyTarget) error { return nil }),
		})
		eventually(t, settleTimeout, "10 jobs replayed and run", func() bool { return len(s.fixedRuns(t, before)) >= 10 })
		s.kill(t, ops)
		eventually(t, settleTimeout, "the killed replay's messages back, and the replayed jobs run", func() bool {
			dead, job := s.queue(t, deadQueue), s.queue(t, jobQueue)
			return dead.Unacked == 0 && dead.Consumers == 0 && job.Ready == 0 && job.Unacked == 0
		})
		if code := exitCode(t, ops); code != 137 {
			t.Errorf("the replay exited %d, want 137 (killed)", code)
		}

		stillDead := map[string]int{}
		for _, j := range s.deadList(t) {
			stillDead[j.ID]++
		}
		ran := s.fixedRuns(t, before)
		lost, duplicated := 0, 0
		for _, id := range batch {
			switch n := stillDead[id] + ran[id]; {
			case n == 0:
				lost++
				t.Errorf("%s is lost: neither dead nor run", id)
			case n > 1:
				duplicated += n - 1
			}
		}
		t.Logf("replay killed midway: %d of %d jobs replayed and run, %d still dead, %d duplicated, %d lost", len(ran), total, len(stillDead), duplicated, lost)
		if len(stillDead) == 0 || len(ran) == 0 {
			t.Fatalf("%d run and %d still dead: the replay was not killed midway", len(ran), len(stillDead))
		}
		if duplicated > 1 {
			t.Errorf("%d jobs duplicated, want at most 1 (the one in flight)", duplicated)
		}

		// The rest replays as if nothing happened.
		if code, out, errOut := s.dead(t, "replay", "--all"); code != 0 || out != fmt.Sprintf("replayed %d of %d\n", len(stillDead), len(stillDead)) {
			t.Fatalf("dead replay --all after the kill: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		s.awaitFixedRuns(t, before, batch...)
		extra := 0
		for _, n := range s.fixedRuns(t, before) {
			extra += n - 1
		}
		if extra > 1 {
			t.Errorf("%d runs more than jobs, want at most 1", extra)
		}
		if q := s.queue(t, deadQueue); q.Ready != 0 || q.Unacked != 0 {
			t.Errorf("%s holds %d ready, %d unacked at the end; want none", deadQueue, q.Ready, q.Unacked)
		}
	})
}

// dead runs "daemon dead ARGS" as compose's ops service does and returns
// its exit status, stdout and stderr.
func (s *testStack) dead(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	c := s.run(t, s.Ops, stack.Run{Args: append([]string{"dead"}, args...)})
	stdout, stderr = s.outputs(t, c)
	return exitCode(t, c), stdout, stderr
}

// deadSummary is a line of "daemon dead list --json".
type deadSummary struct {
	ID       string `json:"id"`
	Reason   string `json:"reason"`
	Attempts int    `json:"attempts"`
	Queue    string `json:"queue"`
	Body     string `json:"body"`
}

// deadList returns what "daemon dead list --json ARGS" lists, in order.
func (s *testStack) deadList(t *testing.T, args ...string) []deadSummary {
	t.Helper()
	code, out, errOut := s.dead(t, append([]string{"list", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("dead list --json: exit %d: %s", code, errOut)
	}
	var list []deadSummary
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var j deadSummary
		if err := dec.Decode(&j); err != nil {
			t.Fatalf("dead list --json: %v in:\n%s", err, out)
		}
		list = append(list, j)
	}
	return list
}

func summaryIDs(list []deadSummary) []string {
	var ids []string
	for _, j := range list {
		ids = append(ids, j.ID)
	}
	return ids
}

// outputs returns what c wrote to stdout and to stderr, apart.
func (s *testStack) outputs(t *testing.T, c *testcontainers.DockerContainer) (stdout, stderr string) {
	t.Helper()
	r, err := s.Docker.ContainerLogs(context.Background(), c.GetContainerID(), client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatalf("container logs: %v", err)
	}
	defer r.Close()
	var out, errOut bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errOut, r); err != nil {
		t.Fatalf("read container logs: %v", err)
	}
	return out.String(), errOut.String()
}

// fixedRuns counts, by message id, the runs of "broken" jobs that ran
// fixed, and so succeeded, at attempt 1, among the misbehave.php runs
// after the first skip.
func (s *testStack) fixedRuns(t *testing.T, skip int) map[string]int {
	t.Helper()
	runs := map[string]int{}
	lines := s.misbehaveLines(t)
	for _, r := range lines[min(skip, len(lines)):] {
		if r.Do == "broken" && r.Fixed {
			if r.Attempt != "1" {
				t.Errorf("%s ran at attempt %q after its replay, want 1", r.ID, r.Attempt)
			}
			runs[r.ID]++
		}
	}
	return runs
}

// awaitFixedRuns waits until each of ids ran fixed after the first skip
// runs, and the job queue is empty again.
func (s *testStack) awaitFixedRuns(t *testing.T, skip int, ids ...string) {
	t.Helper()
	eventually(t, settleTimeout, fmt.Sprintf("%v replayed and run", ids), func() bool {
		runs := s.fixedRuns(t, skip)
		for _, id := range ids {
			if runs[id] == 0 {
				return false
			}
		}
		q := s.queue(t, jobQueue)
		return q.Ready == 0 && q.Unacked == 0
	})
}
