//go:build integration

package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/testcontainers/testcontainers-go"

	"github.com/fpmq/fpmq/integration/stack"
)

// TestObservability scrapes the daemon after jobs that succeed and jobs that
// fail, and watches its health follow php-fpm's.
func TestObservability(t *testing.T) {
	s := newStack(t, stackOptions{workerSleep: 0})

	t.Run("metrics count what happened", func(t *testing.T) {
		var bodies [][]byte
		for n := 1; n <= 20; n++ {
			bodies = append(bodies, []byte(fmt.Sprintf(`{"number":%d}`, n)))
		}
		// Not JSON objects: malformed. Without an integer number: the
		// worker's own 400.
		bodies = append(bodies, []byte("garbage"), []byte(`[1]`), []byte(`"text"`), []byte(`{"number":1.5}`), []byte(`{}`))
		s.publish(t, bodies...)

		eventually(t, settleTimeout, "every job settled", func() bool {
			m := scrape(t, s.daemon)
			return m[series("fpmq_jobs_succeeded_total", jobQueue)] == 20 && m[series("fpmq_jobs_dead_lettered_total", jobQueue, "reason", "malformed")] == 3 &&
				m[series("fpmq_jobs_dead_lettered_total", jobQueue, "reason", "rejected")] == 2
		})
		m := scrape(t, s.daemon)
		for _, tc := range []struct {
			name string
			got  float64
			want float64
		}{
			{"received", m[series("fpmq_jobs_received_total", jobQueue)], 25},
			{"malformed", m[series("fpmq_jobs_malformed_total", jobQueue)], 3},
			{"2xx answers", m[series("fpmq_worker_responses_total", jobQueue, "class", "2xx")], 20},
			{"4xx answers", m[series("fpmq_worker_responses_total", jobQueue, "class", "4xx")], 2},
			{"retried", m[series("fpmq_jobs_retried_total", jobQueue)], 0},
			{"in flight", m[series("fpmq_jobs_in_flight", jobQueue)], 0},
			{"worker durations", m[series("fpmq_worker_duration_seconds_count", jobQueue)], 22},
			{"end-to-end latencies", m[series("fpmq_job_latency_seconds_count", jobQueue)], 25},
			{"concurrency", m[series("fpmq_concurrency_limit", jobQueue)], 5},
			{"connected", m[series("fpmq_broker_connected", jobQueue)], 1},
			{"paused", m[series("fpmq_consumption_paused", jobQueue)], 0},
			{"pool up", m[series("fpmq_phpfpm_up", jobQueue)], 1},
			{"pool children", m[series("fpmq_phpfpm_processes", jobQueue)], 5},
			{"ready", m[series("fpmq_ready", jobQueue)], 1},
		} {
			if tc.got != tc.want {
				t.Errorf("%s = %g, want %g", tc.name, tc.got, tc.want)
			}
		}
		eventually(t, settleTimeout, "queue figures read from RabbitMQ", func() bool {
			m := scrape(t, s.daemon)
			return m[`fpmq_queue_consumers{queue="commands",role="job"}`] == 1 && m[`fpmq_queue_messages_ready{queue="commands.dead",role="dead"}`] == 5
		})
	})

	t.Run("readiness follows php-fpm", func(t *testing.T) {
		if code := healthcheck(t, s.daemon); code != 0 {
			t.Fatalf("daemon healthcheck exit %d while everything runs", code)
		}
		ctx := context.Background()
		timeout := stack.StopTimeout
		if err := s.PHP.Stop(ctx, &timeout); err != nil {
			t.Fatalf("stop php-fpm: %v", err)
		}
		eventually(t, settleTimeout, "/readyz unready without php-fpm", func() bool { return readyz(t, s.daemon) == http.StatusServiceUnavailable })
		if code := healthcheck(t, s.daemon); code == 0 {
			t.Error("daemon healthcheck exit 0 without php-fpm")
		}
		if code := healthcheckLive(t, s.daemon); code != 0 {
			t.Errorf("daemon healthcheck live exit %d: the process is alive", code)
		}
		if err := s.PHP.Start(ctx); err != nil {
			t.Fatalf("start php-fpm: %v", err)
		}
		eventually(t, settleTimeout, "/readyz ready again", func() bool { return readyz(t, s.daemon) == http.StatusOK })
		if code := healthcheck(t, s.daemon); code != 0 {
			t.Errorf("daemon healthcheck exit %d after php-fpm returned", code)
		}
	})
}

// publishTo publishes n jobs to queue.
func (s *testStack) publishTo(t *testing.T, queue string, n int) {
	t.Helper()
	code, out := s.runCaller(t, map[string]string{"AMQP_QUEUE": queue, "AMQP_URL": s.URL(rabbitUser)}, numberArgs(n)...)
	if code != 0 {
		t.Fatalf("caller to %s: exit %d:\n%s", queue, code, out)
	}
}

func numberArgs(n int) []string {
	args := make([]string, n)
	for i := range args {
		args[i] = strconv.Itoa(i + 1)
	}
	return args
}

// scrape reads a daemon's /metrics into a map from series (name and labels,
// as written) to value.
func scrape(t *testing.T, d *testcontainers.DockerContainer) map[string]float64 {
	t.Helper()
	body, code := get(t, d, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: status %d", code)
	}
	series := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			series[line[:i]] = v
		}
	}
	return series
}

// series returns how a daemon's /metrics writes the series name of the daemon
// consuming queue with the further labels, given as name-value pairs: every
// fpmq_* series carries the daemon's job queue, and the labels are sorted.
func series(name, queue string, labels ...string) string {
	pairs := []string{`queue="` + queue + `"`}
	for i := 0; i+1 < len(labels); i += 2 {
		pairs = append(pairs, labels[i]+`="`+labels[i+1]+`"`)
	}
	slices.Sort(pairs)
	return name + "{" + strings.Join(pairs, ",") + "}"
}

func readyz(t *testing.T, d *testcontainers.DockerContainer) int {
	_, code := get(t, d, "/readyz")
	return code
}

func get(t *testing.T, d *testcontainers.DockerContainer, path string) (string, int) {
	t.Helper()
	endpoint, err := d.PortEndpoint(context.Background(), stack.MetricsPort, "http")
	if err != nil {
		t.Fatalf("daemon endpoint: %v", err)
	}
	resp, err := http.Get(endpoint + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b), resp.StatusCode
}

// healthcheck runs "daemon healthcheck" inside the daemon's container, as
// its container health check does, and returns the exit status.
func healthcheck(t *testing.T, d *testcontainers.DockerContainer) int {
	t.Helper()
	code, _ := execIn(t, d, "/daemon", "healthcheck")
	return code
}

func healthcheckLive(t *testing.T, d *testcontainers.DockerContainer) int {
	t.Helper()
	code, _ := execIn(t, d, "/daemon", "healthcheck", "live")
	return code
}
