//go:build integration

package integration

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/testcontainers/testcontainers-go"

	"github.com/fpmq/fpmq/integration/stack"
)

// Sizes of TestRoutes: a flood of slow reports on a pool of 2, then quick
// commands on a pool of 5.
const (
	slowReports   = 20
	reportSeconds = 10
	quickCommands = 20
	// quickDeadline is how long the quick commands may take, flood or not:
	// seconds, where waiting behind the reports would take minutes.
	quickDeadline = 10 * time.Second
)

// TestRoutes runs the two routes as compose does, commands -> pool commands
// -> php/worker.php and reports -> pool reports -> php/report.php, each
// daemon logged in as the daemon user that RabbitMQ grants exactly these
// routes' queues, and floods the slow route.
func TestRoutes(t *testing.T) {
	s := newStack(t, stackOptions{
		workerSleep: 0.1,
		reportSleep: reportSeconds,
		daemonEnv:   map[string]string{"MAX_ATTEMPTS": "3"},
	})
	reports := s.startReportsDaemon(t, map[string]string{"REQUEST_TIMEOUT": "30s", "MAX_ATTEMPTS": "2"})
	commands := s.daemon

	// A report that can never succeed first, so that it is not stuck
	// behind the flood; then the flood.
	msgs := []amqp.Publishing{stack.Job("report-bad", []byte(`{"number":"not a number"}`))}
	for i := range slowReports {
		msgs = append(msgs, stack.Job(fmt.Sprintf("report-%d", i), []byte(fmt.Sprintf(`{"number":%d}`, 1000+i))))
	}
	s.publishMessages(t, reportsQueue, msgs...)
	eventually(t, settleTimeout, "the reports pool busy with the flood", func() bool {
		return scrape(t, reports)[series("fpmq_jobs_in_flight", reportsQueue)] == 2
	})

	t.Run("quick commands finish within seconds while the reports run", func(t *testing.T) {
		start := time.Now()
		msgs := []amqp.Publishing{stack.Job("command-bad", []byte(`{"number":"not a number"}`))}
		for i := range quickCommands {
			msgs = append(msgs, stack.Job(fmt.Sprintf("command-%d", i), []byte(fmt.Sprintf(`{"number":%d}`, i))))
		}
		s.publishMessages(t, jobQueue, msgs...)
		eventually(t, quickDeadline, fmt.Sprintf("%d quick commands processed", quickCommands), func() bool {
			return len(s.processed(t)) == quickCommands
		})
		t.Logf("%d quick commands done in %s with %d reports of %d s queued", quickCommands, time.Since(start).Round(time.Millisecond), slowReports, reportSeconds)
		for n, runs := range s.processed(t) {
			if n < 0 || n >= quickCommands || runs != 1 {
				t.Errorf("command %d processed %d times", n, runs)
			}
		}

		// The reports are still at it: both children busy, most of them
		// waiting in their own queue.
		m := scrape(t, reports)
		if got := m[series("fpmq_jobs_in_flight", reportsQueue)]; got != 2 {
			t.Errorf("reports in flight %g after the commands, want 2", got)
		}
		if done := m[series("fpmq_jobs_succeeded_total", reportsQueue)]; done >= slowReports/2 {
			t.Errorf("%g reports done already: the flood did not last", done)
		}
		if q := s.queue(t, reportsQueue); q.Ready == 0 {
			t.Errorf("no reports waiting in %s: the flood did not last", reportsQueue)
		}
		lines, err := s.LogLines(context.Background(), stack.ReportLog)
		if err != nil {
			t.Fatal(err)
		}
		if len(lines) == 0 || !strings.HasPrefix(lines[0], "Report 10") {
			t.Errorf("report log %q, want Report lines of php/report.php", lines)
		}
	})

	t.Run("each route's metrics carry its queue", func(t *testing.T) {
		for _, tc := range []struct {
			queue       string
			d           *testcontainers.DockerContainer
			concurrency float64
		}{
			{jobQueue, commands, 5},
			{reportsQueue, reports, 2},
		} {
			m := scrape(t, tc.d)
			if got := m[series("fpmq_concurrency_limit", tc.queue)]; got != tc.concurrency {
				t.Errorf("%s: concurrency limit %g, want %g", tc.queue, got, tc.concurrency)
			}
			// Every child of the reports pool is busy, so that php-fpm has
			// none left to answer its status page: only fpmq_phpfpm_up is
			// there, at 0. The idle commands pool shows its own 5 children.
			if _, ok := m[series("fpmq_phpfpm_up", tc.queue)]; !ok {
				t.Errorf("%s: no fpmq_phpfpm_up of its pool", tc.queue)
			}
			if got, ok := m[series("fpmq_phpfpm_processes", tc.queue)]; (ok || tc.queue == jobQueue) && got != tc.concurrency {
				t.Errorf("%s: its pool has %g children, want %g (its own pool)", tc.queue, got, tc.concurrency)
			}
			if got := m[fmt.Sprintf(`fpmq_queue_consumers{queue=%q,role="job"}`, tc.queue)]; got != 1 {
				t.Errorf("%s: %g consumers of its job queue, want 1", tc.queue, got)
			}
			// The fpmq_queue_* series describe each of the route's queues
			// (queue="commands.dead", role="dead"); every other series is
			// the route's, labelled with its job queue.
			own := regexp.MustCompile(fmt.Sprintf(`queue="%s(\.[^"]+)?"`, regexp.QuoteMeta(tc.queue)))
			for name := range m {
				perQueue := strings.HasPrefix(name, "fpmq_queue_")
				switch {
				case !strings.HasPrefix(name, "fpmq_"):
				case perQueue && !own.MatchString(name):
					t.Errorf("%s: series %s describes a queue of another route", tc.queue, name)
				case !perQueue && !strings.Contains(name, fmt.Sprintf("queue=%q", tc.queue)):
					t.Errorf("%s: series %s lacks the route's queue label", tc.queue, name)
				}
			}
		}
		if got := scrape(t, commands)[series("fpmq_jobs_succeeded_total", jobQueue)]; got != quickCommands {
			t.Errorf("commands succeeded %g, want %d", got, quickCommands)
		}
	})

	t.Run("each route's dead-letter queue gets its own failures", func(t *testing.T) {
		for queue, id := range map[string]string{jobQueue: "command-bad", reportsQueue: "report-bad"} {
			dead := s.awaitDead(t, queue, 1)
			if got := dead[0].MessageId; got != id {
				t.Errorf("%s.dead holds %s, want %s", queue, got, id)
			}
			if reason := dead[0].Headers["x-fpmq-reason"]; reason != "rejected" {
				t.Errorf("%s.dead: reason %v, want rejected (the script's 400)", queue, reason)
			}
		}
	})
}
