package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/admin"
	"github.com/fpmq/fpmq/services/internal/amqptest"
)

func TestOpsArguments(t *testing.T) {
	t.Setenv("METRICS_ADDR", freeAddr(t))
	tests := []struct {
		args   []string
		code   int
		stdout string // in stdout
		stderr string // in stderr
	}{
		{[]string{"pause", "-h"}, 0, "Usage: daemon pause", ""},
		{[]string{"status", "--help"}, 0, "ADMIN_TOKEN", ""},
		{[]string{"pause", "--bogus"}, 2, "", "flag provided but not defined: -bogus"},
		{[]string{"resume", "--reason", "x"}, 2, "", "flag provided but not defined: -reason"},
		{[]string{"status", "now"}, 2, "", `unexpected argument "now"`},
		{[]string{"pause", "--addr", "nohostport"}, 2, "", "--addr"},
		{[]string{"status"}, 1, "", "is the daemon running"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, nil, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q and %q", code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.stderr)
			}
		})
	}

	t.Setenv("METRICS_ADDR", "")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"status"}, nil, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "METRICS_ADDR is empty") {
		t.Errorf("status without METRICS_ADDR: exit %d, %q", code, stderr.String())
	}
}

// TestPauseResumeStatus runs a daemon against a fake broker and drives it
// with its own commands, as an operator would.
func TestPauseResumeStatus(t *testing.T) {
	srv := amqptest.NewServer(t)
	addr := freeAddr(t)
	t.Setenv("AMQP_URL", srv.URL)
	t.Setenv("METRICS_ADDR", addr)
	t.Setenv("LOG_FORMAT", "json")
	t.Setenv("FASTCGI_ADDR", "tcp://127.0.0.1:1")
	t.Setenv("MAX_ATTEMPTS", "3")
	// The test reads the log as soon as the daemon acted.
	t.Setenv("LOG_FLUSH_INTERVAL", "0")
	ctx, cancel := context.WithCancel(context.Background())
	var daemonLog syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, nil, nil, io.Discard, &daemonLog) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the daemon did not stop")
		}
	})
	amqptest.WaitFor(t, "consuming", func() bool {
		q, ok := srv.Queue("commands")
		return ok && q.Consumers == 1
	})

	command := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, nil, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	if code, out, errOut := command("pause", "--reason", "db migration"); code != 0 || out != "paused (reason: db migration)\n" {
		t.Fatalf("pause: exit %d, %q, %q", code, out, errOut)
	}
	amqptest.WaitFor(t, "unsubscribed", func() bool { q, _ := srv.Queue("commands"); return q.Consumers == 0 })
	if code, out, _ := command("pause", "--reason", "other", "--wait"); code != 0 || !strings.HasPrefix(out, "already paused since ") ||
		!strings.Contains(out, "(reason: db migration)") || !strings.Contains(out, "no job running") {
		t.Errorf("second pause: exit %d, %q", code, out)
	}
	if code, _, errOut := command("healthcheck"); code != 1 || !strings.Contains(errOut, "paused by operator: db migration") {
		t.Errorf("healthcheck while paused: exit %d, %q", code, errOut)
	}
	if m := get(t, "http://"+addr+"/metrics"); !strings.Contains(m, `fpmq_consumption_paused_by_operator{queue="commands"} 1`) || !strings.Contains(m, `fpmq_consumption_paused{queue="commands"} 1`) {
		t.Errorf("metrics while paused lack the pause gauges at 1")
	}

	for _, q := range []string{"commands", "commands", "commands.dead", "commands.retry.2s", "commands.delay.1s", "commands.delay.1m4s", "commands.delay.1m4s"} {
		if err := srv.Enqueue(q, amqp.Publishing{Body: []byte(`{"number":1}`)}); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := command("status", "--json")
	var st admin.Status
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || len(st.Routes) != 1 {
		t.Fatalf("status --json: exit %d, %v: %s %s", code, err, out, errOut)
	}
	r := st.Routes[0]
	if r.Queue != "commands" || !r.Paused || r.Reason != "db migration" || *r.Ready != 2 || r.Unacked != 0 || *r.Dead != 1 ||
		*r.Consumers != 0 || r.Delayed == nil || *r.Delayed != 3 || len(r.Retry) != 2 || *r.Retry[0].Ready != 0 || *r.Retry[1].Ready != 1 || r.Retry[1].Delay != "2s" {
		t.Errorf("status: %s", out)
	}
	code, out, _ = command("status")
	for _, want := range []string{"ROUTE", "commands  paused by operator  2", "1s:0 2s:1  3        1", "paused by operator since", "(reason: db migration)"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("status: exit %d, no %q in:\n%s", code, want, out)
		}
	}

	if code, out, _ := command("resume"); code != 0 || !strings.HasPrefix(out, "resumed") {
		t.Errorf("resume: exit %d, %q", code, out)
	}
	// Resumed, it subscribes again; the two jobs queued above then find no
	// pool (FASTCGI_ADDR refuses) and pause it for php-fpm, which may end
	// the subscription before a poll sees it: either shows the resume.
	amqptest.WaitFor(t, "consuming again", func() bool {
		q, _ := srv.Queue("commands")
		return q.Consumers == 1 || strings.Contains(daemonLog.String(), "php-fpm pool unavailable: pausing consumption")
	})
	if code, out, _ := command("resume"); code != 0 || out != "not paused by an operator: nothing to resume\n" {
		t.Errorf("second resume: exit %d, %q", code, out)
	}
	for _, msg := range []string{"consumption paused by operator", "consumption resumed by operator"} {
		if n := strings.Count(daemonLog.String(), msg); n != 1 {
			t.Errorf("logged %q %d times, want once", msg, n)
		}
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
