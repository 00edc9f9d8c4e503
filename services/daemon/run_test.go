package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fpmq/fpmq/services/internal/amqptest"
	"github.com/fpmq/fpmq/services/internal/fastcgi"
	"github.com/fpmq/fpmq/services/internal/testutil"
	"github.com/fpmq/fpmq/services/internal/tracing"
)

func TestHelpListsEverySetting(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	for _, name := range []string{
		"AMQP_URL", "AMQP_QUEUE", "FASTCGI_ADDR", "SCRIPT_FILENAME", "CONCURRENCY", "PREFETCH",
		"REQUEST_TIMEOUT", "SHUTDOWN_TIMEOUT", "CONNECT_TIMEOUT",
		"RECONNECT_MAX_DELAY", "LOG_LEVEL", "LOG_FORMAT", "AMQP_QUEUE_TYPE", "DEAD_LETTER_QUEUE",
		"MAX_ATTEMPTS", "RETRY_INITIAL_DELAY", "RETRY_FACTOR", "RETRY_MAX_DELAY", "MAX_MESSAGE_SIZE",
		"FASTCGI_PING_PATH", "METRICS_ADDR", "PPROF", "FASTCGI_KEEPALIVE", "AMQP_CA_FILE", "AMQP_CERT_FILE", "AMQP_KEY_FILE",
		"REQUEST_BODY", "FORM_MAX_INPUT_VARS", "FORM_MAX_INPUT_NESTING_LEVEL", "FASTCGI_STATUS_PATH", "QUEUE_STATS_INTERVAL",
		"ADMIN_TOKEN", "DELAY_MAX", "AMQP_MAX_PRIORITY", "AMQP_ADDRESSES", "LOG_FLUSH_INTERVAL",
	} {
		if !strings.Contains(stdout.String(), name) {
			t.Errorf("-h does not mention %s:\n%s", name, stdout.String())
		}
	}
	if !strings.Contains(stdout.String(), "unix:///run/php-fpm/commands.sock") {
		t.Errorf("-h does not show defaults:\n%s", stdout.String())
	}
}

func TestBadConfigurationNamesTheVariable(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"missing URL", map[string]string{"AMQP_URL": ""}, "AMQP_URL"},
		{"URL scheme", map[string]string{"AMQP_URL": "http://u:p@h/"}, "AMQP_URL"},
		{"relative script", map[string]string{"SCRIPT_FILENAME": "worker.php"}, "SCRIPT_FILENAME"},
		{"address scheme", map[string]string{"FASTCGI_ADDR": "udp://h:1"}, "FASTCGI_ADDR"},
		{"zero concurrency", map[string]string{"CONCURRENCY": "0"}, "CONCURRENCY"},
		{"not a number", map[string]string{"CONCURRENCY": "five"}, "CONCURRENCY"},
		{"bad duration", map[string]string{"REQUEST_TIMEOUT": "soon"}, "REQUEST_TIMEOUT"},
		{"zero timeout", map[string]string{"REQUEST_TIMEOUT": "0s"}, "REQUEST_TIMEOUT"},
		{"log level", map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{"log format", map[string]string{"LOG_FORMAT": "xml"}, "LOG_FORMAT"},
		{"queue type", map[string]string{"AMQP_QUEUE_TYPE": "stream"}, "AMQP_QUEUE_TYPE"},
		{"address without a port", map[string]string{"AMQP_ADDRESSES": "rabbitmq-1:5672,rabbitmq-2"}, "AMQP_ADDRESSES"},
		{"dead queue is the job queue", map[string]string{"DEAD_LETTER_QUEUE": "commands"}, "DEAD_LETTER_QUEUE"},
		{"zero attempts", map[string]string{"MAX_ATTEMPTS": "0"}, "MAX_ATTEMPTS"},
		{"delays under a second", map[string]string{"DELAY_MAX": "500ms"}, "DELAY_MAX"},
		{"priority above 255", map[string]string{"AMQP_MAX_PRIORITY": "256"}, "AMQP_MAX_PRIORITY"},
		{"negative priority", map[string]string{"AMQP_MAX_PRIORITY": "-1"}, "AMQP_MAX_PRIORITY"},
		{"shrinking retries", map[string]string{"RETRY_FACTOR": "0.5"}, "RETRY_FACTOR"},
		{"zero size", map[string]string{"MAX_MESSAGE_SIZE": "0"}, "MAX_MESSAGE_SIZE"},
		{"ping path", map[string]string{"FASTCGI_PING_PATH": "ping"}, "FASTCGI_PING_PATH"},
		{"status path", map[string]string{"FASTCGI_STATUS_PATH": "status"}, "FASTCGI_STATUS_PATH"},
		{"body mode", map[string]string{"REQUEST_BODY": "xml"}, "REQUEST_BODY"},
		{"input vars", map[string]string{"FORM_MAX_INPUT_VARS": "0"}, "FORM_MAX_INPUT_VARS"},
		{"nesting", map[string]string{"FORM_MAX_INPUT_NESTING_LEVEL": "-1"}, "FORM_MAX_INPUT_NESTING_LEVEL"},
		{"queue stats", map[string]string{"QUEUE_STATS_INTERVAL": "-1s"}, "QUEUE_STATS_INTERVAL"},
		{"log flush interval", map[string]string{"LOG_FLUSH_INTERVAL": "-1s"}, "LOG_FLUSH_INTERVAL"},
		{"short admin token", map[string]string{"ADMIN_TOKEN": "secret"}, "ADMIN_TOKEN: at least 16 characters"},
		{"unreadable CA file", map[string]string{"AMQP_URL": "amqps://u:secret@127.0.0.1:1/", "AMQP_CA_FILE": "/nonexistent/ca.pem"}, "AMQP_CA_FILE: CA file /nonexistent/ca.pem: no such file"},
		{"CA file without amqps", map[string]string{"AMQP_CA_FILE": "/nonexistent/ca.pem"}, "AMQP_CA_FILE is set, but AMQP_URL is not amqps://"},
		{"client certificate without amqps", map[string]string{"AMQP_CERT_FILE": "/c.pem", "AMQP_KEY_FILE": "/k.pem"}, "AMQP_CERT_FILE and AMQP_KEY_FILE are set, but AMQP_URL is not amqps://"},
		{"certificate without key", map[string]string{"AMQP_URL": "amqps://u:secret@127.0.0.1:1/", "AMQP_CERT_FILE": "/nonexistent/c.pem"}, "AMQP_KEY_FILE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AMQP_URL", "amqp://u:secret@127.0.0.1:1/")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), nil, nil, &stdout, &stderr)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr: %s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr does not name %s: %s", tc.want, stderr.String())
			}
			if strings.Contains(stderr.String(), "secret") {
				t.Errorf("stderr shows the password: %s", stderr.String())
			}
		})
	}
}

func TestTLSConfiguration(t *testing.T) {
	t.Setenv("AMQP_URL", "amqps://u:secret@rabbitmq:5671/")
	t.Setenv("AMQP_CA_FILE", testutil.NewCA(t).File())
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.tls == nil || cfg.tls.RootCAs == nil {
		t.Errorf("TLS configuration %v: want the roots of AMQP_CA_FILE", cfg.tls)
	}

	t.Setenv("AMQP_CA_FILE", "")
	if cfg, err = loadConfig(); err != nil || cfg.tls != nil {
		t.Errorf("amqps:// without files: TLS configuration %v, error %v; want nil, the system's roots", cfg.tls, err)
	}
}

func TestUnknownArgument(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--frobnicate"}, nil, &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), `"--frobnicate"`) {
		t.Errorf("stderr does not name the argument: %s", stderr.String())
	}
}

// With no broker to reach, the daemon keeps retrying, logs the problem
// without the password, and still stops promptly and cleanly when told to.
func TestStopsWhileReconnecting(t *testing.T) {
	t.Setenv("AMQP_URL", "amqp://u:secret@127.0.0.1:1/")
	t.Setenv("LOG_FORMAT", "json")
	t.Setenv("CONNECT_TIMEOUT", "200ms")
	t.Setenv("METRICS_ADDR", freeAddr(t))
	stderr, stop := startDaemon(t, "reconnecting with backoff")

	// Alive, but not ready without a broker: what a container health
	// check sees through "daemon healthcheck".
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"healthcheck", "live"}, nil, &out, &errOut); code != 0 {
		t.Errorf("healthcheck live: exit %d: %s", code, errOut.String())
	}
	errOut.Reset()
	if code := run(context.Background(), []string{"healthcheck"}, nil, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "503") {
		t.Errorf("healthcheck (ready) without a broker: exit %d: %s", code, errOut.String())
	}
	if code := stop(); code != 0 {
		t.Errorf("exit %d, want 0; log:\n%s", code, stderr.String())
	}
	log := stderr.String()
	if strings.Contains(log, "secret") {
		t.Errorf("log shows the password:\n%s", log)
	}
	if !strings.Contains(log, "daemon stopped") {
		t.Errorf("no clean stop logged:\n%s", log)
	}
}

// Without the admin server and the poller, the consumer alone stops the
// daemon.
func TestStopsWithoutAdminServerOrPoller(t *testing.T) {
	t.Setenv("AMQP_URL", "amqp://u:secret@127.0.0.1:1/")
	t.Setenv("LOG_FORMAT", "json")
	t.Setenv("CONNECT_TIMEOUT", "200ms")
	t.Setenv("METRICS_ADDR", "")
	t.Setenv("QUEUE_STATS_INTERVAL", "0")
	stderr, stop := startDaemon(t, "reconnecting with backoff")
	if code := stop(); code != 0 || !strings.Contains(stderr.String(), "daemon stopped") {
		t.Errorf("exit %d, want 0 and a clean stop logged; log:\n%s", code, stderr.String())
	}
}

// startDaemon runs the daemon in the background, configured by the test's
// environment, until it logs until. It returns the daemon's log (its
// stderr) and stop, which cancels it and returns its exit status. The test
// fails if the daemon does not log until within 5s, or does not stop
// within 5s of stop.
func startDaemon(t *testing.T, until string) (stderr *syncBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr = &syncBuffer{}
	var code int
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		code = run(ctx, nil, nil, io.Discard, stderr)
	}()
	wait := func() bool {
		select {
		case <-stopped:
			return true
		case <-time.After(5 * time.Second):
			return false
		}
	}
	t.Cleanup(func() {
		cancel()
		wait()
	})
	amqptest.WaitFor(t, "the daemon logs "+strconv.Quote(until), func() bool { return strings.Contains(stderr.String(), until) })
	return stderr, func() int {
		cancel()
		if !wait() {
			t.Fatal("daemon did not stop within 5s of cancellation")
		}
		return code
	}
}

// syncBuffer is a bytes.Buffer safe to read while the daemon writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestHealthcheckWithoutDaemon(t *testing.T) {
	t.Setenv("METRICS_ADDR", freeAddr(t))
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"healthcheck"}, nil, &out, &errOut); code != 1 {
		t.Errorf("healthcheck with no daemon running: exit %d, want 1", code)
	}
	if code := run(context.Background(), []string{"healthcheck", "sideways"}, nil, &out, &errOut); code != 2 {
		t.Errorf("healthcheck sideways: exit %d, want 2", code)
	}
}

func TestMetricsAddressInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t.Setenv("AMQP_URL", "amqp://u:p@127.0.0.1:1/")
	t.Setenv("METRICS_ADDR", l.Addr().String())
	var out, errOut bytes.Buffer
	if code := run(context.Background(), nil, nil, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "METRICS_ADDR") {
		t.Errorf("exit %d, stderr %q; want 1 naming METRICS_ADDR", code, errOut.String())
	}
}

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Every metric of an assembled daemon can be collected: a gauge without its
// function would make each scrape fail.
func TestMetricsOfAnAssembledDaemon(t *testing.T) {
	t.Setenv("AMQP_URL", "amqp://u:p@127.0.0.1:1/")
	t.Setenv("FASTCGI_ADDR", "unix://"+filepath.Join(t.TempDir(), "none.sock"))
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	client, err := fastcgi.NewClient(cfg.FastCGIAddr, fastcgi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	spans, err := tracing.New(cfg.Env, "fpmq-daemon", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	d := assemble(cfg, client, client, spans, zerolog.Nop())
	families, err := d.metrics.Registry.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
	}
	for _, want := range []string{"fpmq_ready", "fpmq_copy_publish_failures_total", "fpmq_broker_blocked", "fpmq_consumption_paused", "fpmq_consumption_paused_by_operator", "fpmq_phpfpm_up", "fpmq_trace_spans_dropped_total"} {
		if !names[want] {
			t.Errorf("no %s among the metrics", want)
		}
	}
}
