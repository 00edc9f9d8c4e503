//go:build integration

package integration

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/integration/stack"
)

// TestPHPFPMLifecycle replays, on one stack whose php-fpm replaces each
// child after every request (pm.max_requests = 1) and whose daemons keep
// their FastCGI connections, what php-fpm does on its own schedule and
// what a slow job does to its next attempt; none of it may be a job's
// failure, run a job twice at once, or lose its body.
func TestPHPFPMLifecycle(t *testing.T) {
	s := newStack(t, stackOptions{
		children:        6,
		reportsChildren: 3,
		phpBinds:        []string{filepath.Join(repoRoot(t), "integration", "testdata", "php") + ":" + testScripts + ":ro"},
		phpEnv: map[string]string{
			"FPM_MAX_REQUESTS": "1",
			// The reports pool bounds a run at 4 s; the commands pool
			// does not bound it at all (compose's old default).
			"FPM_REPORTS_REQUEST_TERMINATE_TIMEOUT": "4s",
		},
		daemonEnv: map[string]string{"FASTCGI_KEEPALIVE": "true", "CONCURRENCY": "5"},
	})

	t.Run("children replaced after their last request fail no job", func(t *testing.T) {
		numbers := numberRange(1, 300)
		s.publishJobs(t, numbers)
		r := s.waitAll(t, numbers, 2*time.Minute)
		if r.deadLettered != 0 || len(r.duplicates) != 0 {
			t.Errorf("%d dead-lettered, %d run twice; want none", r.deadLettered, len(r.duplicates))
		}
		logs := containerLogs(t, s.daemon)
		if n := strings.Count(logs, `"outcome":"retried"`); n != 0 {
			t.Errorf("%d attempts counted as failed for requests php-fpm never ran:\n%s", n, tail(logs, 10))
		}
		// Each child serves one request, so kept connections end all the
		// time; the daemon sent some jobs again (not all: most are caught
		// before a job is written).
		resent := scrape(t, s.daemon)[series("fpmq_fastcgi_requests_resent_total", jobQueue)]
		t.Logf("%v jobs sent again on a new connection", resent)
	})

	t.Run("an attempt past REQUEST_TIMEOUT is never overlapped by the next", func(t *testing.T) {
		// php-fpm does not bound the run: the daemon waits for it to end.
		const unbounded = "slowjobs"
		d := s.routeDaemon(t, unbounded, map[string]string{"SCRIPT_FILENAME": misbehave, "REQUEST_TIMEOUT": "4s", "MAX_ATTEMPTS": "3"})
		s.publishMessages(t, unbounded, stack.Job("slow-10s", []byte(`{"do":"sleep","seconds":10}`)))
		// The job runs once, to its end, and is done.
		eventually(t, 40*time.Second, "the slow job settled", func() bool {
			logs := containerLogs(t, d)
			return strings.Contains(logs, `"outcome":"succeeded"`) || strings.Contains(logs, `"outcome":"dead-lettered"`)
		})
		if logs := containerLogs(t, d); !strings.Contains(logs, `"outcome":"succeeded"`) {
			t.Errorf("the 10 s job did not succeed:\n%s", tail(logs, 10))
		}
		if n := s.misbehaveRuns(t)["slow-10s"]; n != 1 {
			t.Errorf("the 10 s job ran %d times, want once: a retry overlapped the first run", n)
		}

		// The reports pool kills a run at 4 s: each attempt starts only
		// after php-fpm ended the one before.
		const bounded = "boundedjobs"
		s.routeDaemon(t, bounded, map[string]string{
			"SCRIPT_FILENAME": misbehave, "FASTCGI_ADDR": "unix://" + stack.ReportsSocket,
			"REQUEST_TIMEOUT": "4s", "MAX_ATTEMPTS": "2", "CONCURRENCY": "2",
		})
		s.publishMessages(t, bounded, stack.Job("killed-10s", []byte(`{"do":"sleep","seconds":10}`)))
		dead := s.awaitDead(t, bounded, 1)
		var starts []float64
		for _, r := range s.misbehaveLines(t) {
			if r.ID == "killed-10s" {
				starts = append(starts, r.At)
			}
		}
		if len(starts) != 2 || dead[0].Headers["x-fpmq-reason"] != "attempts-exhausted" {
			t.Fatalf("runs at %v, dead letter %v; want 2 runs, then attempts-exhausted", starts, dead[0].Headers)
		}
		if gap := starts[1] - starts[0]; gap < 4 {
			t.Errorf("the second attempt started %.1f s after the first, before php-fpm ended it at 4 s", gap)
		}
	})

	t.Run("a raw body reaches the script as sent, whatever its type", func(t *testing.T) {
		const raw = "rawbodies"
		s.routeDaemon(t, raw, map[string]string{"SCRIPT_FILENAME": misbehave, "REQUEST_BODY": "raw"})
		const boundary = "fpmq-boundary"
		bodies := map[string]struct{ contentType, body string }{
			"multipart": {"multipart/form-data; boundary=" + boundary,
				"--" + boundary + "\r\nContent-Disposition: form-data; name=\"do\"\r\n\r\nraw\r\n" +
					"--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n" +
					"Content-Type: text/plain\r\n\r\nhello\r\n--" + boundary + "--\r\n"},
			"urlencoded": {"application/x-www-form-urlencoded", "do=raw&number=7"},
			"json":       {"application/json", `{"do":"raw"}`},
		}
		var msgs []amqp.Publishing
		for id, b := range bodies {
			m := stack.Job("raw-"+id, []byte(b.body))
			m.ContentType = b.contentType
			msgs = append(msgs, m)
		}
		s.publishMessages(t, raw, msgs...)
		ids := slices.Collect(func(yield func(string) bool) {
			for id := range bodies {
				if !yield("raw-" + id) {
					return
				}
			}
		})
		eventually(t, settleTimeout, "every raw job ran", func() bool { return len(s.misbehaveRecords(t, ids...)) == len(ids) })
		got := s.misbehaveRecords(t, ids...)
		for id, b := range bodies {
			if in := got["raw-"+id].Input; in != b.body {
				t.Errorf("%s: php://input %q, want the body as published, %q", id, in, b.body)
			}
		}
		// A form job on a child that ran a raw one still gets $_POST.
		formRoute := "formafterraw"
		s.routeDaemon(t, formRoute, map[string]string{"SCRIPT_FILENAME": misbehave})
		s.publishMessages(t, formRoute, stack.Job("form-echo", []byte(`{"do":"echo","n":"1"}`)))
		eventually(t, settleTimeout, "the form job ran", func() bool { return len(s.misbehaveRecords(t, "form-echo")) == 1 })
		if post := string(s.misbehaveRecords(t, "form-echo")["form-echo"].Post); !strings.Contains(post, `"n":"1"`) {
			t.Errorf("form job after raw ones: $_POST %s, want its fields", post)
		}
	})
}
