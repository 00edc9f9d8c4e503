//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"

	"github.com/fpmq/fpmq/integration/stack"
)

// adminToken is the test daemon's ADMIN_TOKEN.
const adminToken = "operate-test-token-0123456789abcdef"

// TestOperate pauses a daemon under load, as an operator does before a
// database migration, looks at it with daemon status, and resumes it:
// running jobs finish, nothing else starts, the queue keeps the rest, and
// after the resume every job has run exactly once. Only loopback, or the
// token, may do it.
func TestOperate(t *testing.T) {
	s := newStack(t, stackOptions{workerSleep: 1, noDaemon: true})
	d := s.startDaemon(t, map[string]string{"ADMIN_TOKEN": adminToken})
	const total = 40 // 8 s of work for 5 children: the pause comes while jobs run
	numbers := make([]int64, total)
	for i := range numbers {
		numbers[i] = int64(i + 1)
	}
	s.publishJobs(t, numbers)
	eventually(t, settleTimeout, "the first jobs started", func() bool { return len(s.processed(t)) > 0 })

	// docker compose exec runs the command in the daemon's container, which
	// reaches the daemon on loopback: no token needed.
	noToken := []string{"ADMIN_TOKEN="}
	code, out := execEnv(t, d, noToken, "/daemon", "pause", "--reason", "db migration")
	if code != 0 || !strings.HasPrefix(out, "paused (reason: db migration)\n") || !strings.Contains(out, "still running") {
		t.Fatalf("daemon pause: exit %d:\n%s\nwant paused with the reason, while jobs run", code, out)
	}

	var q stack.Queue
	eventually(t, settleTimeout, "the running jobs finished and the daemon holds nothing", func() bool {
		q = s.queue(t, jobQueue)
		return q.Consumers == 0 && q.Unacked == 0
	})
	started := s.processed(t)
	if len(started) == 0 || len(started) == total || q.Ready != total-len(started) {
		t.Fatalf("%d jobs started before the pause, %d ready in the queue; want some started and the other %d kept", len(started), q.Ready, total-len(started))
	}
	t.Logf("%d jobs started before the pause took effect, %d kept in the queue", len(started), q.Ready)
	for n, runs := range started {
		if runs != 1 {
			t.Errorf("job %d ran %d times before the resume", n, runs)
		}
	}
	body, status := get(t, d, "/readyz")
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "paused by operator: db migration") {
		t.Errorf("/readyz while paused: %d %q", status, body)
	}
	m := scrape(t, d)
	if m[series("fpmq_consumption_paused_by_operator", jobQueue)] != 1 || m[series("fpmq_consumption_paused", jobQueue)] != 1 || m[series("fpmq_jobs_succeeded_total", jobQueue)] != float64(len(started)) ||
		m[series("fpmq_jobs_received_total", jobQueue)] != float64(len(started)) {
		t.Errorf("metrics while paused: paused by operator %g, paused %g, succeeded %g, received %g; want 1, 1 and %d started jobs, all succeeded",
			m[series("fpmq_consumption_paused_by_operator", jobQueue)], m[series("fpmq_consumption_paused", jobQueue)], m[series("fpmq_jobs_succeeded_total", jobQueue)], m[series("fpmq_jobs_received_total", jobQueue)], len(started))
	}

	// A second pause changes nothing; --wait returns since no job runs.
	code, out = execEnv(t, d, noToken, "/daemon", "pause", "--reason", "another", "--wait")
	if code != 0 || !strings.Contains(out, "already paused since") || !strings.Contains(out, "(reason: db migration)") || !strings.Contains(out, "no job running") {
		t.Errorf("second daemon pause: exit %d:\n%s", code, out)
	}
	// Nothing starts for longer than a job takes.
	time.Sleep(2 * time.Second)
	if now := s.processed(t); len(now) != len(started) {
		t.Errorf("%d jobs started while paused", len(now)-len(started))
	}
	if n := countLog(t, d, "consumption paused by operator", "db migration"); n != 1 {
		t.Errorf("logged the pause %d times with its reason, want once", n)
	}

	t.Run("daemon status reports what RabbitMQ holds", func(t *testing.T) {
		// Two dead jobs and one waiting in the second retry queue (no
		// expiration: it stays there).
		const retryQueue = jobQueue + ".retry.400ms"
		s.publishMessages(t, deadQueue, stack.Job("dead-1", []byte(`{}`)), stack.Job("dead-2", []byte(`{}`)))
		s.publishMessages(t, retryQueue, stack.Job("retry-1", []byte(`{"number":1000}`)))
		code, out := execIn(t, d, "/daemon", "status", "--json")
		var st struct {
			Routes []struct {
				Queue     string `json:"queue"`
				Paused    bool   `json:"paused"`
				Reason    string `json:"reason"`
				Ready     *int   `json:"ready"`
				Unacked   int    `json:"unacked"`
				Delayed   *int   `json:"delayed"`
				Dead      *int   `json:"dead"`
				Consumers *int   `json:"consumers"`
				Retry     []struct {
					Queue string `json:"queue"`
					Ready *int   `json:"ready"`
				} `json:"retry"`
				Succeeded float64 `json:"succeeded_per_second"`
			} `json:"routes"`
		}
		if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || len(st.Routes) != 1 {
			t.Fatalf("daemon status --json: exit %d, %v:\n%s", code, err, out)
		}
		r := st.Routes[0]
		if r.Queue != jobQueue || !r.Paused || r.Reason != "db migration" || r.Ready == nil || *r.Ready != total-len(started) || r.Unacked != 0 ||
			r.Dead == nil || *r.Dead != 2 || r.Consumers == nil || *r.Consumers != 0 || r.Delayed == nil || *r.Delayed != 0 || r.Succeeded <= 0 {
			t.Errorf("status:\n%s\nwant paused, %d ready, 0 unacked, 2 dead, 0 consumers, 0 delayed, some succeeded", out, total-len(started))
		}
		if len(r.Retry) != 4 {
			t.Fatalf("status lists %d retry queues, want 4 (MAX_ATTEMPTS 5):\n%s", len(r.Retry), out)
		}
		for _, rq := range r.Retry {
			want := 0
			if rq.Queue == retryQueue {
				want = 1
			}
			if got := s.queue(t, rq.Queue); rq.Ready == nil || *rq.Ready != want || got.Ready != want {
				t.Errorf("retry queue %s: status says %v, rabbitmqctl %d; want %d", rq.Queue, rq.Ready, got.Ready, want)
			}
		}

		code, out = execIn(t, d, "/daemon", "status")
		if code != 0 || !strings.Contains(out, "paused by operator") || !strings.Contains(out, "400ms:1") {
			t.Errorf("daemon status: exit %d:\n%s", code, out)
		}
	})

	t.Run("only loopback, or the token", func(t *testing.T) {
		// From the host, through the published port: Docker forwards it
		// from the bridge network's gateway, not from loopback.
		url := endpoint(t, d) + "/admin/status"
		for _, tc := range []struct {
			name, auth string
			want       int
		}{
			{"no token", "", http.StatusUnauthorized},
			{"wrong token", "Bearer " + adminToken + "x", http.StatusForbidden},
			{"the token", "Bearer " + adminToken, http.StatusOK},
		} {
			if got := adminRequest(t, http.MethodGet, url, tc.auth); got != tc.want {
				t.Errorf("GET /admin/status from the host with %s: %d, want %d", tc.name, got, tc.want)
			}
		}
		if got := adminRequest(t, http.MethodPost, endpoint(t, d)+"/admin/resume", ""); got != http.StatusUnauthorized {
			t.Errorf("POST /admin/resume from the host without the token: %d, want 401", got)
		}
		// The daemon writes its log lines in batches (LOG_FLUSH_INTERVAL).
		var from []netip.AddrPort
		eventually(t, 10*time.Second, "the refused requests in the daemon's log", func() bool {
			from = refusedFrom(t, d)
			return len(from) > 0
		})
		for _, a := range from {
			if a.Addr().IsLoopback() {
				t.Errorf("a request from the host arrived from %s: loopback, which needs no token", a)
			}
		}
		t.Logf("requests from the host arrive from %v", from[0].Addr())

		// From the compose network: the container's own address is not
		// loopback either; daemon status --addr sends ADMIN_TOKEN.
		ip, err := d.ContainerIP(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		addr := ip + ":9090"
		if code, out := execEnv(t, d, noToken, "/daemon", "status", "--addr", addr); code != 1 || !strings.Contains(out, "401") {
			t.Errorf("daemon status --addr without ADMIN_TOKEN: exit %d:\n%s\nwant 1 and 401", code, out)
		}
		if code, out := execIn(t, d, "/daemon", "status", "--addr", addr); code != 0 || !strings.Contains(out, "paused by operator") {
			t.Errorf("daemon status --addr with ADMIN_TOKEN: exit %d:\n%s", code, out)
		}
	})

	code, out = execEnv(t, d, noToken, "/daemon", "resume")
	if code != 0 || out != "resumed\n" {
		t.Fatalf("daemon resume: exit %d: %q", code, out)
	}
	eventually(t, settleTimeout+total*time.Second/5, "every job run", func() bool { return len(s.processed(t)) == total })
	eventually(t, settleTimeout, "the queue empty and the daemon ready", func() bool {
		q := s.queue(t, jobQueue)
		return q.Ready == 0 && q.Unacked == 0 && q.Consumers == 1 && readyz(t, d) == http.StatusOK
	})
	for n, runs := range s.processed(t) {
		if runs != 1 {
			t.Errorf("job %d ran %d times, want once", n, runs)
		}
	}
	if m := scrape(t, d); m[series("fpmq_consumption_paused_by_operator", jobQueue)] != 0 || m[series("fpmq_jobs_succeeded_total", jobQueue)] != total {
		t.Errorf("after the resume: paused by operator %g, succeeded %g; want 0 and %d", m[series("fpmq_consumption_paused_by_operator", jobQueue)], m[series("fpmq_jobs_succeeded_total", jobQueue)], total)
	}
	if n := countLog(t, d, "consumption resumed by operator", "db migration"); n != 1 {
		t.Errorf("logged the resume %d times, want once", n)
	}
	if code, out := execIn(t, d, "/daemon", "resume"); code != 0 || !strings.Contains(out, "nothing to resume") {
		t.Errorf("second daemon resume: exit %d: %q", code, out)
	}
}

// execEnv runs cmd in c with env added to the container's environment, and
// returns its exit status and output.
func execEnv(t *testing.T, c *testcontainers.DockerContainer, env []string, cmd ...string) (int, string) {
	t.Helper()
	code, r, err := c.Exec(context.Background(), cmd, tcexec.Multiplexed(), tcexec.WithEnv(env))
	if err != nil {
		t.Fatalf("exec %s: %v", cmd[0], err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("exec %s: read output: %v", cmd[0], err)
	}
	return code, string(out)
}

// endpoint returns the URL of a daemon's published metrics port.
func endpoint(t *testing.T, d *testcontainers.DockerContainer) string {
	t.Helper()
	e, err := d.PortEndpoint(context.Background(), stack.MetricsPort, "http")
	if err != nil {
		t.Fatalf("daemon endpoint: %v", err)
	}
	return e
}

// adminRequest sends a request with the Authorization header auth (none
// if empty) and returns the status.
func adminRequest(t *testing.T, method, url, auth string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// logEntries returns the daemon's JSON log entries whose message contains msg.
func logEntries(t *testing.T, d *testcontainers.DockerContainer, msg string) []map[string]any {
	t.Helper()
	var found []map[string]any
	for line := range strings.Lines(containerLogs(t, d)) {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil && strings.Contains(fmt.Sprint(e["message"]), msg) {
			found = append(found, e)
		}
	}
	return found
}

// countLog counts the daemon's log entries with msg and reason.
func countLog(t *testing.T, d *testcontainers.DockerContainer, msg, reason string) int {
	t.Helper()
	n := 0
	for _, e := range logEntries(t, d, msg) {
		if e["reason"] == reason {
			n++
		}
	}
	return n
}

// refusedFrom returns the addresses of the admin requests the daemon
// refused, as it logged them.
func refusedFrom(t *testing.T, d *testcontainers.DockerContainer) []netip.AddrPort {
	t.Helper()
	var from []netip.AddrPort
	for _, e := range logEntries(t, d, "admin request refused") {
		a, err := netip.ParseAddrPort(fmt.Sprint(e["from"]))
		if err != nil {
			t.Fatalf("refusal logged from %v: %v", e["from"], err)
		}
		from = append(from, a)
	}
	return from
}
