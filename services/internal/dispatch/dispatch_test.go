package dispatch

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/fcgi"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/rs/zerolog"

	"github.com/fpmq/fpmq/services/internal/fastcgi"
)

// acknowledger records how a delivery was settled.
type acknowledger struct {
	mu      sync.Mutex
	settled []string
}

func (a *acknowledger) record(s string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.settled = append(a.settled, s)
	return nil
}
func (a *acknowledger) Ack(uint64, bool) error { return a.record("ack") }
func (a *acknowledger) Nack(_ uint64, _ bool, requeue bool) error {
	if requeue {
		return a.record("nack-requeue")
	}
	return a.record("nack")
}
func (a *acknowledger) Reject(_ uint64, requeue bool) error {
	if requeue {
		return a.record("reject-requeue")
	}
	return a.record("reject")
}

// seen is what the FastCGI server saw of one request.
type seen struct {
	form      url.Values
	messageID string
	attempt   string
	script    string
	length    int64
}

// serve runs handler as a FastCGI server on a unix socket and returns its address.
func serve(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "fpm.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go fcgi.Serve(l, handler)
	return "unix://" + sock
}

func newDispatcher(t *testing.T, addr string, log *bytes.Buffer) *Dispatcher {
	t.Helper()
	client, err := fastcgi.NewClient(addr)
	if err != nil {
		t.Fatal(err)
	}
	return New(client, Config{
		Script:     "/app/worker.php",
		Timeout:    2 * time.Second,
		RetryDelay: 10 * time.Millisecond,
	}, zerolog.New(log))
}

func delivery(body string) (amqp.Delivery, *acknowledger) {
	ack := &acknowledger{}
	return amqp.Delivery{Acknowledger: ack, MessageId: "m-1", Body: []byte(body), Timestamp: time.Unix(1700000000, 0)}, ack
}

func TestHandle(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		status  int // the worker's answer; 0 writes nothing
		want    Outcome
		settled string
	}{
		{"success without Status header", `{"number":42}`, 0, Succeeded, "ack"},
		{"explicit 200", `{"number":42}`, 200, Succeeded, "ack"},
		{"204", `{"number":42}`, 204, Succeeded, "ack"},
		{"worker error", `{"number":42}`, 500, Requeued, "nack-requeue"},
		{"worker rejects", `{"number":42}`, 400, Requeued, "nack-requeue"},
		{"not json", `number=42`, 0, Rejected, "reject"},
		{"no number", `{"count":42}`, 0, Rejected, "reject"},
		{"fractional number", `{"number":4.2}`, 0, Rejected, "reject"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []seen
			var mu sync.Mutex
			addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
				if err := r.ParseForm(); err != nil {
					t.Errorf("parse form: %v", err)
				}
				mu.Lock()
				got = append(got, seen{
					form:      r.PostForm,
					messageID: r.Header.Get("X-Message-Id"),
					attempt:   r.Header.Get("X-Attempt"),
					script:    fcgi.ProcessEnv(r)["SCRIPT_FILENAME"],
					length:    r.ContentLength,
				})
				mu.Unlock()
				if tc.status != 0 {
					w.WriteHeader(tc.status)
				}
			})
			var log bytes.Buffer
			d := newDispatcher(t, addr, &log)
			m, ack := delivery(tc.body)

			if o := d.Handle(context.Background(), m); o != tc.want {
				t.Errorf("outcome %v, want %v; log:\n%s", o, tc.want, log.String())
			}
			if len(ack.settled) != 1 || ack.settled[0] != tc.settled {
				t.Errorf("settled %v, want [%s]", ack.settled, tc.settled)
			}
			if tc.want == Rejected {
				if len(got) != 0 {
					t.Errorf("a malformed message reached the worker: %+v", got)
				}
				if !strings.Contains(log.String(), "malformed") {
					t.Errorf("rejection not logged with its reason:\n%s", log.String())
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("worker saw %d requests, want 1", len(got))
			}
			r := got[0]
			if r.form.Get("number") != "42" || r.messageID != "m-1" || r.attempt != "1" || r.script != "/app/worker.php" || r.length != int64(len("number=42")) {
				t.Errorf("worker saw %+v", r)
			}
		})
	}
}

func TestHandleUnreachablePool(t *testing.T) {
	var log bytes.Buffer
	d := newDispatcher(t, "unix://"+filepath.Join(t.TempDir(), "missing.sock"), &log)
	m, ack := delivery(`{"number":1}`)
	if o := d.Handle(context.Background(), m); o != Requeued {
		t.Errorf("outcome %v, want requeued", o)
	}
	if len(ack.settled) != 1 || ack.settled[0] != "nack-requeue" {
		t.Errorf("settled %v, want [nack-requeue]", ack.settled)
	}
}

func TestHandleTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	addr := serve(t, func(http.ResponseWriter, *http.Request) { <-release })
	var log bytes.Buffer
	d := newDispatcher(t, addr, &log)
	d.cfg.Timeout = 100 * time.Millisecond
	m, ack := delivery(`{"number":1}`)

	start := time.Now()
	if o := d.Handle(context.Background(), m); o != Requeued {
		t.Errorf("outcome %v, want requeued", o)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("a hung worker held the job for %s", elapsed)
	}
	if len(ack.settled) != 1 || ack.settled[0] != "nack-requeue" {
		t.Errorf("settled %v, want [nack-requeue]", ack.settled)
	}
	if !strings.Contains(log.String(), "deadline") {
		t.Errorf("timeout not logged:\n%s", log.String())
	}
}

func TestHandleRetryPause(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) })
	var log bytes.Buffer
	d := newDispatcher(t, addr, &log)
	d.cfg.RetryDelay = 300 * time.Millisecond

	m, _ := delivery(`{"number":1}`)
	start := time.Now()
	d.Handle(context.Background(), m)
	if elapsed := time.Since(start); elapsed < 300*time.Millisecond {
		t.Errorf("failed job requeued after %s, want a pause of at least 300ms", elapsed)
	}

	// A cancelled context (shutdown timeout) skips the pause.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m, ack := delivery(`{"number":1}`)
	start = time.Now()
	d.Handle(ctx, m)
	if elapsed := time.Since(start); elapsed >= 300*time.Millisecond {
		t.Errorf("cancelled job waited %s before requeue", elapsed)
	}
	if len(ack.settled) != 1 || ack.settled[0] != "nack-requeue" {
		t.Errorf("settled %v, want [nack-requeue]", ack.settled)
	}
}

func TestForwardStderr(t *testing.T) {
	var log bytes.Buffer
	forwardStderr(zerolog.New(&log), []byte("PHP message: one\r\n\ntwo"))
	out := log.String()
	if strings.Count(out, `"source":"worker"`) != 2 || !strings.Contains(out, `"stderr":"PHP message: one"`) || !strings.Contains(out, `"stderr":"two"`) {
		t.Errorf("forwarded:\n%s", out)
	}
}

func TestAttemptOf(t *testing.T) {
	tests := []struct {
		m    amqp.Delivery
		want int
	}{
		{amqp.Delivery{}, 1},
		{amqp.Delivery{Redelivered: true}, 2},
		{amqp.Delivery{Redelivered: true, Headers: amqp.Table{"x-delivery-count": int64(3)}}, 4},
	}
	for _, tc := range tests {
		if got := attemptOf(tc.m); got != tc.want {
			t.Errorf("attemptOf(%+v) = %d, want %d", tc.m, got, tc.want)
		}
	}
}
