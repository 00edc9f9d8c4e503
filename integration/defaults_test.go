//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// composeDefaults returns the environment compose.yaml gives service with
// default settings: no .env, nothing from the test's environment but the
// passwords compose insists on.
func composeDefaults(t *testing.T, service string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "compose", "--env-file", os.DevNull, "-p", "fpmq-test-defaults", "config", "--format", "json")
	cmd.Dir = repoRoot(t)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"RABBITMQ_ADMIN_PASSWORD=unused", "RABBITMQ_CALLER_PASSWORD=unused", "RABBITMQ_DAEMON_PASSWORD=unused"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker compose config: %v", err)
	}
	var cfg struct {
		Services map[string]struct {
			Environment map[string]*string `json:"environment"`
		} `json:"services"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("docker compose config: %v", err)
	}
	env := map[string]string{}
	for k, v := range cfg.Services[service].Environment {
		if v != nil {
			env[k] = *v
		}
	}
	return env
}

// TestDeployedDefaults runs the commands route with compose's default
// pool size, concurrency and kept-alive connections, and 1-second jobs of
// php/worker.php: with every worker's connection pinning a child, the
// pool's spare child keeps the daemon ready, php-fpm's status page (the
// pool metrics, counting the pool's children right) and php-fpm's
// healthcheck answering under full load; every job's outcome
// reaches the daemon's log, batched, and the worker adds no stderr line.
// RabbitMQ's healthcheck passes, and fails naming a port that is closed.
func TestDeployedDefaults(t *testing.T) {
	php, daemon := composeDefaults(t, "php-fpm"), composeDefaults(t, "daemon")
	children, err := strconv.Atoi(php["FPM_MAX_CHILDREN"])
	if err != nil {
		t.Fatalf("compose's FPM_MAX_CHILDREN: %v", err)
	}
	concurrency, err := strconv.Atoi(daemon["CONCURRENCY"])
	if err != nil {
		t.Fatalf("compose's CONCURRENCY: %v", err)
	}
	if daemon["FASTCGI_KEEPALIVE"] != "true" || children != concurrency+1 {
		t.Fatalf("compose runs FASTCGI_KEEPALIVE=%s with %d children for CONCURRENCY %d, want kept-alive connections and one spare child",
			daemon["FASTCGI_KEEPALIVE"], children, concurrency)
	}

	s := newStack(t, stackOptions{
		children:    concurrency,
		workerSleep: 1,
		phpEnv:      map[string]string{"FPM_MAX_CHILDREN": php["FPM_MAX_CHILDREN"]},
		daemonEnv:   map[string]string{"FASTCGI_KEEPALIVE": daemon["FASTCGI_KEEPALIVE"], "CONCURRENCY": daemon["CONCURRENCY"]},
	})
	// The broker's healthcheck (the image's and compose's): every listener
	// accepts, and a port nothing listens on is named.
	if code, out := execIn(t, s.RabbitMQ, "/usr/local/bin/fpmq-healthcheck"); code != 0 {
		t.Errorf("RabbitMQ's healthcheck: exit %d: %s", code, out)
	}
	if code, out := execIn(t, s.RabbitMQ, "env", "FPMQ_HEALTHCHECK_PORTS=15672 1", "/usr/local/bin/fpmq-healthcheck"); code != 1 || !strings.Contains(out, "127.0.0.1:1\n") {
		t.Errorf("RabbitMQ's healthcheck with port 1 too: exit %d: %q; want 1 and the port named", code, out)
	}

	jobs := 6 * concurrency
	numbers := make([]int64, jobs)
	for i := range numbers {
		numbers[i] = int64(i + 1)
	}
	s.publishJobs(t, numbers)

	// Full load: every worker runs a job on its kept connection.
	eventually(t, 30*time.Second, "every worker busy", func() bool {
		m := scrape(t, s.daemon)
		return m[series("fpmq_phpfpm_active_processes", jobQueue)] >= float64(concurrency)
	})
	for range 3 {
		if code := readyz(t, s.daemon); code != 200 {
			t.Errorf("/readyz under full load = %d, want 200: the daemon's ping finds the spare child", code)
		}
		if code, out := execIn(t, s.PHP, "php", "/usr/local/lib/fpmq/healthcheck.php"); code != 0 {
			t.Errorf("php-fpm's healthcheck under full load: exit %d: %s", code, out)
		}
		// The pool's status page answers through the spare child, and its
		// counts are the pool's: php-fpm's own summary drifts with
		// kept-alive connections (it said 11 processes, all active, for
		// these 6 children), so the daemon counts the listed processes.
		m := scrape(t, s.daemon)
		if got := m[series("fpmq_phpfpm_up", jobQueue)]; got != 1 {
			t.Errorf("fpmq_phpfpm_up under full load = %g, want 1", got)
		}
		procs, active := m[series("fpmq_phpfpm_processes", jobQueue)], m[series("fpmq_phpfpm_active_processes", jobQueue)]
		if procs != float64(children) || active < float64(concurrency) || active > procs {
			t.Errorf("php-fpm's status under full load: %g processes, %g active; want the pool's %d, at least the %d workers' children active",
				procs, active, children, concurrency)
		}
		time.Sleep(500 * time.Millisecond)
	}

	eventually(t, 2*time.Minute, "every job processed once", func() bool {
		p := s.processed(t)
		for _, n := range numbers {
			if p[n] != 1 {
				return false
			}
		}
		return len(p) == jobs
	})
	var logs string
	eventually(t, 10*time.Second, "an outcome line per job in the daemon's log", func() bool {
		logs = containerLogs(t, s.daemon)
		return strings.Count(logs, `"outcome":"succeeded"`) == jobs
	})
	if n := strings.Count(logs, `"message":"worker stderr"`); n != 0 {
		t.Errorf("%d worker stderr lines for %d jobs of php/worker.php, want none", n, jobs)
	}
}
