//go:build integration

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	chromiumPath   = "/usr/bin/chromium"
	monitorProject = "fpmq-mon-test"
	monitorJobs    = 20
)

// TestMonitoring starts the stack as users do, with compose and its
// monitoring profile, sends jobs, and checks in a real browser (Debian's
// headless Chromium) that Prometheus' fpmq console shows them. It uses
// compose rather than testcontainers because what it tests is compose.yaml's
// prometheus service: its image, scrape targets, ports and hardening.
func TestMonitoring(t *testing.T) {
	browser := requireChromium(t)
	start := time.Now()
	ports := freePorts(t, 6)
	c := &composeProject{name: monitorProject, dir: repoRoot(t), env: []string{
		"AMQP_PORT=" + ports[0],
		"MANAGEMENT_PORT=" + ports[1],
		"METRICS_PORT=" + ports[2],
		"PROMETHEUS_PORT=" + ports[3],
		"REPORTS_METRICS_PORT=" + ports[4],
		// compose starts the web console too (services/console).
		"CONSOLE_PORT=" + ports[5],
		"WORKER_SLEEP=0.2",
	}}
	prometheus := "http://127.0.0.1:" + ports[3]

	t.Cleanup(func() { c.down(t) })
	// --build: the test checks this tree's images and console, not those of
	// the last `make images`; with a warm build cache it takes seconds.
	c.run(t, "up", "--build", "--detach", "--wait")
	t.Logf("stack up after %s", time.Since(start).Round(time.Second))

	// Jobs only once Prometheus has scraped the daemon's counters at 0:
	// the graphs plot rates, which need a sample from before the jobs.
	eventually(t, time.Minute, "Prometheus scrapes the daemon and RabbitMQ", func() bool {
		for _, job := range []string{"daemon", "rabbitmq", "rabbitmq-queues"} {
			if v, ok := promQuery(t, prometheus, fmt.Sprintf(`min(up{job=%q})`, job)); !ok || v != 1 {
				return false
			}
		}
		_, queue := promQuery(t, prometheus, `rabbitmq_detailed_queue_messages_ready{queue="commands"}`)
		_, jobs := promQuery(t, prometheus, `fpmq_jobs_succeeded_total{queue="commands"}`)
		return queue && jobs
	})

	out := c.run(t, append([]string{"run", "--rm", "--build", "-T", "caller"}, numberArgs(monitorJobs)...)...)
	if sent := strings.Count(out, "[x] Message sent:"); sent != monitorJobs {
		t.Fatalf("caller confirmed %d jobs, want %d:\n%s", sent, monitorJobs, out)
	}
	eventually(t, time.Minute, "Prometheus scrapes the finished jobs", func() bool {
		v, _ := promQuery(t, prometheus, "sum(fpmq_jobs_succeeded_total)")
		if v > monitorJobs {
			t.Fatalf("Prometheus counts %g succeeded jobs, more than the %d sent", v, monitorJobs)
		}
		return v == monitorJobs
	})
	t.Logf("scraped after %s", time.Since(start).Round(time.Second))

	page := prometheus + "/consoles/fpmq.html"
	dom := chromium(t, browser, "--dump-dom", page)
	for _, tc := range []struct{ id, want string }{
		{"fpmq-succeeded", strconv.Itoa(monitorJobs)},
		{"fpmq-received", strconv.Itoa(monitorJobs)},
		{"fpmq-dead-lettered", "0"},
		{"fpmq-daemons", "2 / 2"}, // one per route
		{"fpmq-rabbitmq-up", "yes"},
		{"fpmq-connected", "yes"},
		{"fpmq-paused", "no"},
		{"fpmq-pool-up", "yes"},
	} {
		if got := cellText(dom, tc.id); got != tc.want {
			t.Errorf("#%s shows %q, want %q", tc.id, got, tc.want)
		}
	}
	if got := cellText(dom, "fpmq-queue-commands"); !regexp.MustCompile(`^\d+ / \d+$`).MatchString(got) {
		t.Errorf("#fpmq-queue-commands shows %q, want the queue's ready / unacked counts from RabbitMQ", got)
	}
	// The graphs are drawn by scripts Prometheus serves from its image: an
	// svg per graph shows they loaded and got data from the query API.
	if graphs, svgs := strings.Count(dom, `class="fpmq-graph"`), strings.Count(dom, "<svg"); graphs == 0 || svgs < graphs {
		t.Errorf("%d graphs drawn of %d", svgs, graphs)
	}
	for _, failure := range []string{"Error loading data", "No timeseries returned"} {
		if strings.Contains(dom, failure) {
			t.Errorf("a graph shows %q", failure)
		}
	}

	// The screenshot is for people (CI keeps it as an artifact): a window
	// of a minute, as the stack is that young.
	shot := filepath.Join(repoRoot(t), "integration", "artifacts", "monitoring.png")
	if err := os.MkdirAll(filepath.Dir(shot), 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(shot)
	chromium(t, browser, "--screenshot="+shot, "--window-size=1400,1400",
		page+"#pctc"+url.PathEscape(`{"duration":60,"endTime":0}`))
	png, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 20_000 {
		t.Fatalf("screenshot %s is not a plausible PNG (%d bytes)", shot, len(png))
	}
	t.Logf("screenshot: %s (%d KiB); done after %s", shot, len(png)/1024, time.Since(start).Round(time.Second))
}

// requireChromium returns the browser's path, or skips the test where it is
// missing, unless FPMQ_REQUIRE_BROWSER is set (CI sets it).
func requireChromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("FPMQ_REQUIRE_BROWSER") != "" {
			t.Fatalf("FPMQ_REQUIRE_BROWSER is set but %s is missing: apt-get install chromium", chromiumPath)
		}
		t.Skipf("%s is missing: apt-get install chromium to run the browser check (FPMQ_REQUIRE_BROWSER=1 makes this a failure)", chromiumPath)
	}
	return chromiumPath
}

// chromium runs headless Chromium once with args and returns its stdout.
func chromium(t *testing.T, browser string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args = append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(),
		// Run the page's scripts, and wait for their queries, before the
		// DOM or the screenshot is taken.
		"--virtual-time-budget=15000",
	}, args...)
	cmd := exec.CommandContext(ctx, browser, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args[len(args)-2:], err, stderr.String())
	}
	return stdout.String()
}

var (
	tags   = regexp.MustCompile(`<[^>]*>`)
	spaces = regexp.MustCompile(`\s+`)
)

// cellText returns the text of the table cell with the given id in a
// serialized DOM, its markup removed and its spaces collapsed, or "" if there
// is no such cell.
func cellText(dom, id string) string {
	i := strings.Index(dom, `id="`+id+`"`)
	if i < 0 {
		return ""
	}
	cell := dom[i:]
	if end := strings.Index(cell, "</td>"); end >= 0 {
		cell = cell[:end]
	}
	if gt := strings.IndexByte(cell, '>'); gt >= 0 {
		cell = cell[gt+1:]
	}
	return strings.TrimSpace(spaces.ReplaceAllString(tags.ReplaceAllString(cell, ""), " "))
}

// promQuery runs an instant query on Prometheus and returns the value of its
// single series; ok is false when the result is not exactly one series.
func promQuery(t *testing.T, base, query string) (value float64, ok bool) {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		t.Fatalf("query Prometheus: %v", err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string
		Data   struct {
			Result []struct {
				Value [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "success" {
		t.Fatalf("query Prometheus %q: status %s, %v", query, r.Status, err)
	}
	if len(r.Data.Result) != 1 {
		return 0, false
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// freePorts returns n TCP ports free on 127.0.0.1 right now, for the
// stack's published ports, so that it runs next to the default stack.
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var ports []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		defer l.Close()
		ports = append(ports, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	}
	return ports
}

// composeProject runs docker compose on the repository's compose.yaml, with
// the monitoring profile, under its own project name (its own containers,
// network and volumes) and with env added to the environment (.env still
// provides the rest).
type composeProject struct {
	name string
	dir  string // the repository's root
	env  []string
}

func (c *composeProject) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "docker", append([]string{"compose", "-p", c.name, "--profile", "monitoring"}, args...)...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), c.env...)
	return cmd
}

// run runs a compose command and returns its output; it fails the test if
// the command fails.
func (c *composeProject) run(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	out, err := c.command(ctx, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker compose %s: %v\n%s", strings.Join(args, " "), err, tail(string(out), 60))
	}
	return string(out)
}

// down removes everything the project created, after showing the services'
// logs if the test failed.
func (c *composeProject) down(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if t.Failed() {
		out, _ := c.command(ctx, "logs", "--no-color", "--tail=40").CombinedOutput()
		t.Logf("compose logs:\n%s", out)
	}
	out, err := c.command(ctx, "--profile", "tools", "down", "--volumes", "--remove-orphans", "--timeout", "10").CombinedOutput()
	if err != nil {
		t.Errorf("docker compose down: %v\n%s", err, out)
	}
}
