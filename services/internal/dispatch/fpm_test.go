package dispatch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/fastcgi"
	"github.com/fpmq/fpmq/services/internal/outcome"
	"github.com/fpmq/fpmq/services/internal/phpform"
)

// fpmRequest is one request as the fake php-fpm read it.
type fpmRequest struct {
	params map[string]string
	stdin  []byte
}

// fpmAnswer is what the fake php-fpm answers: STDOUT, STDERR, or nothing
// at all (hangUp: the child died mid-request).
type fpmAnswer struct {
	stdout, stderr string
	hangUp         bool
}

// fakeFPM is just enough of php-fpm for these tests, and as strict where it
// matters: it parses each FCGI_PARAMS record on its own, as php-fpm does
// (php-src main/fastcgi.c), dropping the connection on a pair that
// straddles records; it answers STDERR as well as STDOUT; it keeps the
// connection open when asked (FCGI_KEEP_CONN). Its ping path answers "pong".
func fakeFPM(t *testing.T, answer func(fpmRequest) fpmAnswer) (string, func() []fpmRequest) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "fpm.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []fpmRequest
	var conns sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		conns.Wait()
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Go(func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					req, keep, err := readFPMRequest(r)
					if err != nil {
						return
					}
					if req.params["SCRIPT_NAME"] == "/ping" && req.params["REQUEST_METHOD"] == "GET" {
						writeFPM(c, fpmAnswer{stdout: "Content-type: text/plain\r\n\r\npong"})
					} else {
						mu.Lock()
						got = append(got, req)
						mu.Unlock()
						a := answer(req)
						if a.hangUp {
							return
						}
						writeFPM(c, a)
					}
					if !keep {
						return
					}
				}
			})
		}
	}()
	return "unix://" + sock, func() []fpmRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]fpmRequest(nil), got...)
	}
}

func readFPMRequest(r *bufio.Reader) (req fpmRequest, keep bool, err error) {
	req.params = map[string]string{}
	for {
		var h [8]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return req, false, err
		}
		typ, n, pad := h[1], int(binary.BigEndian.Uint16(h[4:6])), int(h[6])
		content := make([]byte, n+pad)
		if _, err := io.ReadFull(r, content); err != nil {
			return req, false, err
		}
		content = content[:n]
		switch typ {
		case 1: // BEGIN_REQUEST
			keep = content[2]&1 != 0
		case 4: // PARAMS, one record at a time
			for len(content) > 0 {
				var name, value string
				var ok bool
				if name, value, content, ok = readPair(content); !ok {
					return req, false, errors.New("a name-value pair straddles records")
				}
				req.params[name] = value
			}
		case 5: // STDIN
			if n == 0 {
				return req, keep, nil
			}
			req.stdin = append(req.stdin, content...)
		}
	}
}

func readPair(b []byte) (name, value string, rest []byte, ok bool) {
	readLen := func() (int, bool) {
		if len(b) == 0 {
			return 0, false
		}
		if b[0]>>7 == 0 {
			n := int(b[0])
			b = b[1:]
			return n, true
		}
		if len(b) < 4 {
			return 0, false
		}
		n := int(binary.BigEndian.Uint32(b) & 0x7fffffff)
		b = b[4:]
		return n, true
	}
	nl, ok1 := readLen()
	vl, ok2 := readLen()
	if !ok1 || !ok2 || len(b) < nl+vl {
		return "", "", nil, false
	}
	return string(b[:nl]), string(b[nl : nl+vl]), b[nl+vl:], true
}

func writeFPM(w io.Writer, a fpmAnswer) {
	out := bufio.NewWriterSize(w, 64<<10)
	defer out.Flush()
	stream := func(typ byte, s string) {
		for len(s) > 0 {
			n := min(len(s), 65535)
			out.Write([]byte{1, typ, 0, 1, byte(n >> 8), byte(n), 0, 0})
			out.WriteString(s[:n])
			s = s[n:]
		}
		out.Write([]byte{1, typ, 0, 1, 0, 0, 0, 0})
	}
	if a.stderr != "" {
		stream(7, a.stderr)
	}
	stream(6, a.stdout)
	out.Write([]byte{1, 3, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
}

// answerStatus answers with a Status header (none for 0) and stderr.
func answerStatus(status int, stderr string) func(fpmRequest) fpmAnswer {
	return func(fpmRequest) fpmAnswer {
		head := "Content-type: text/html\r\n"
		if status != 0 {
			head = fmt.Sprintf("Status: %d\r\n", status) + head
		}
		return fpmAnswer{stdout: head + "\r\nbody", stderr: stderr}
	}
}

// php-fpm's own refusals say nothing about the job: it goes back untouched,
// the consumer is told to pause, and the log names the script.
func TestPHPFPMRefusalIsNotTheJobs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		stderr string
	}{
		{"script not found", 404, "Primary script unknown"},
		{"script not readable", 404, "Unable to open primary script: /app/worker.php (No such file or directory)"},
		{"extension refused", 403, "Access to the script '/app/worker.php' has been denied (see security.limit_extensions)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := fakeFPM(t, answerStatus(tc.status, tc.stderr))
			var log bytes.Buffer
			d := newDispatcher(t, addr, &log)
			m, ack := delivery(`{"number":1}`, nil)
			pub := &publisher{}
			res := d.Handle(context.Background(), m, pub)
			if res.Outcome != outcome.Requeued || !errors.Is(res.Err, outcome.ErrPoolUnavailable) {
				t.Errorf("result %+v, want requeued with ErrPoolUnavailable", res)
			}
			if len(pub.sent) != 0 || len(ack.settled) != 1 || ack.settled[0] != "nack-requeue" {
				t.Errorf("published %v, settled %v; want nothing and a requeue", pub.sent, ack.settled)
			}
			if !strings.Contains(log.String(), `"script":"/app/worker.php"`) || !strings.Contains(res.Err.Error(), tc.stderr) {
				t.Errorf("the script is not named: %v\n%s", res.Err, log.String())
			}
		})
	}
	// The script's own 404 is the job's answer.
	addr, _ := fakeFPM(t, answerStatus(404, "PHP message: no such user"))
	var log bytes.Buffer
	res := newDispatcher(t, addr, &log).Handle(context.Background(), must(delivery(`{"number":1}`, nil)), &publisher{})
	if res.Outcome != outcome.DeadLettered || res.Reason != outcome.ReasonRejected {
		t.Errorf("the script's own 404: %+v, want rejected", res)
	}
}

func must(m amqp.Delivery, _ *acknowledger) amqp.Delivery { return m }

// A PHP fatal error is a failed attempt whatever the status says, and its
// text reaches the dead letter once the attempts are spent.
func TestFatalErrorFailsTheAttempt(t *testing.T) {
	const fatal = "PHP Fatal error:  Uncaught Error: Call to undefined function nope() in /app/worker.php:3"
	addr, _ := fakeFPM(t, answerStatus(0, "PHP message: Processing 1PHP message: "+fatal))
	var log bytes.Buffer
	d := newDispatcher(t, addr, &log)
	m, _ := delivery(`{"number":1}`, nil)
	res := d.Handle(context.Background(), m, &publisher{})
	if res.Outcome != outcome.Retried || !res.Fatal || res.Status != 200 || !strings.Contains(res.Err.Error(), fatal) {
		t.Errorf("result %+v, want a retried fatal error", res)
	}
	m, _ = delivery(`{"number":1}`, amqp.Table{outcome.HeaderAttempt: int64(3)})
	pub := &publisher{}
	res = d.Handle(context.Background(), m, pub)
	if res.Outcome != outcome.DeadLettered || res.Reason != outcome.ReasonExhausted || len(pub.sent) != 1 ||
		!strings.Contains(pub.sent[0].msg.Headers[outcome.HeaderLastError].(string), "Call to undefined function nope()") {
		t.Errorf("last attempt: %+v, copies %v", res, pub.sent)
	}
}

// What a worker writes to stderr is logged one message per event, within
// bounds, however much it writes; its stdout is not kept.
func TestStderrIsBoundedAndSplit(t *testing.T) {
	var stderr strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&stderr, "PHP message: message %d", i)
	}
	addr, _ := fakeFPM(t, func(fpmRequest) fpmAnswer {
		return fpmAnswer{stdout: "\r\n" + strings.Repeat("y", 3<<20), stderr: stderr.String()}
	})
	var log bytes.Buffer
	d := newDispatcher(t, addr, &log)
	// Megabytes through the race detector on a busy machine may take more
	// than the usual 2s, which is not what this test is about.
	d.cfg.Timeout = time.Minute
	res := d.Handle(context.Background(), must(delivery(`{"number":1}`, nil)), &publisher{})
	if res.Outcome != outcome.Succeeded {
		t.Fatalf("result %+v", res)
	}
	out := log.String()
	if n := strings.Count(out, `"message":"worker stderr"`); n != 20 {
		t.Errorf("%d stderr events logged, want 20", n)
	}
	if !strings.Contains(out, `"stderr":"message 0"`) || !strings.Contains(out, `"dropped_messages":4980`) {
		t.Errorf("log lacks the first message or the count of dropped ones:\n%.2000s", out)
	}
	if res.StderrDropped != 4980 {
		t.Errorf("StderrDropped = %d, want 4980", res.StderrDropped)
	}
}

// A child that dies mid-job (killed, OOM, request_terminate_timeout) is one
// failed attempt, counted, on new and on kept-alive connections alike, and
// the request is sent once.
func TestChildDiedMidJob(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keepalive=%v", keep), func(t *testing.T) {
			addr, requests := fakeFPM(t, func(fpmRequest) fpmAnswer { return fpmAnswer{hangUp: true} })
			opts := fastcgi.Options{}
			if keep {
				opts.MaxIdleConns = 2
			}
			var log bytes.Buffer
			d := newDispatcherWith(t, addr, opts, &log)
			res := d.Handle(context.Background(), must(delivery(`{"number":1}`, nil)), &publisher{})
			if res.Outcome != outcome.Retried || errors.Is(res.Err, outcome.ErrPoolUnavailable) {
				t.Errorf("result %+v, want a retried attempt", res)
			}
			if n := len(requests()); n != 1 {
				t.Errorf("the worker saw the job %d times, want once", n)
			}
		})
	}
}

// php-fpm drops a request whose params straddle records; a header too
// large for any record is left out, named for the worker, and the job runs.
func TestLargeHeadersReachPHPFPM(t *testing.T) {
	addr, requests := fakeFPM(t, answerStatus(0, ""))
	var log bytes.Buffer
	d := newDispatcher(t, addr, &log)
	d.cfg.MaxMessageSize = 1 << 20

	many := amqp.Table{}
	for i := range 200 {
		many[fmt.Sprintf("h%03d", i)] = strings.Repeat("v", 400)
	}
	res := d.Handle(context.Background(), must(delivery(`{"number":1}`, many)), &publisher{})
	if res.Outcome != outcome.Succeeded {
		t.Fatalf("200 headers of 400 bytes: %+v", res)
	}
	if got := requests()[0].params; len(got["HTTP_X_HEADER_H199"]) != 400 {
		t.Errorf("header h199 arrived as %d bytes", len(got["HTTP_X_HEADER_H199"]))
	}

	huge := amqp.Table{"big": strings.Repeat("x", 70_000), "small": "ok"}
	res = d.Handle(context.Background(), must(delivery(`{"number":1}`, huge)), &publisher{})
	if res.Outcome != outcome.Succeeded {
		t.Fatalf("one 70 KB header: %+v", res)
	}
	got := requests()[1].params
	// The whole message, which holds the big header, is too large as well.
	_, withMessage := got[messageParam]
	if _, ok := got["HTTP_X_HEADER_BIG"]; ok || withMessage || got["HTTP_X_HEADER_SMALL"] != "ok" || got[omittedParam] != "big,x-fpmq-message" {
		t.Errorf("params %v, omitted %q; want big and the message left out and named", keys(got), got[omittedParam])
	}
	if !strings.Contains(log.String(), "headers too large") {
		t.Errorf("no warning logged:\n%s", log.String())
	}
}

func keys(m map[string]string) []string {
	var k []string
	for name := range m {
		k = append(k, name)
	}
	return k
}

// Each param of the job table comes from the message; none chooses what runs.
func TestJobParams(t *testing.T) {
	addr, requests := fakeFPM(t, answerStatus(0, ""))
	var log bytes.Buffer
	d := newDispatcher(t, addr, &log)
	m, _ := delivery(`{"number":1,"to":"a@b.example"}`, amqp.Table{"x-delivery-count": int64(2)})
	m.Type, m.CorrelationId, m.ReplyTo, m.AppId = "send-mail", "c-1", "replies", "shop"
	m.Priority, m.Exchange, m.RoutingKey, m.Redelivered = 5, "", "jobs", true
	d.Handle(context.Background(), m, &publisher{})
	p := requests()[0].params
	for name, want := range map[string]string{
		"HTTP_X_JOB_NAME": "send-mail", "HTTP_X_MESSAGE_ID": "m-1", "HTTP_X_CORRELATION_ID": "c-1",
		"HTTP_X_REPLY_TO": "replies", "HTTP_X_APP_ID": "shop", "HTTP_X_CONTENT_TYPE": "application/json",
		"HTTP_X_PRIORITY": "5", "HTTP_X_ROUTING_KEY": "jobs", "HTTP_X_QUEUE": "jobs", "HTTP_X_ATTEMPT": "1",
		"HTTP_X_REDELIVERED": "1", "HTTP_X_DELIVERY_COUNT": "2", "HTTP_X_TIMESTAMP": "1700000000",
		"SCRIPT_FILENAME": "/app/worker.php", "CONTENT_TYPE": "application/x-www-form-urlencoded",
	} {
		if p[name] != want {
			t.Errorf("%s = %q, want %q", name, p[name], want)
		}
	}
	if !strings.Contains(p["HTTP_X_DEADLINE"], ".") {
		t.Errorf("HTTP_X_DEADLINE = %q, want Unix seconds with milliseconds", p["HTTP_X_DEADLINE"])
	}
	form, _ := url.ParseQuery(string(requests()[0].stdin))
	if form.Get("to") != "a@b.example" || form.Get("number") != "1" {
		t.Errorf("form %v", form)
	}
}

// In raw mode the body reaches php://input unchanged, whatever it is.
func TestRawBody(t *testing.T) {
	addr, requests := fakeFPM(t, answerStatus(0, ""))
	var log bytes.Buffer
	d := newDispatcher(t, addr, &log)
	d.cfg.Body = BodyRaw
	for _, tc := range []struct{ body, contentType, want string }{
		{"\x00\x01binary", "", "application/octet-stream"},
		{`[1,2,3]`, "application/json", "application/json"},
		{"a,b\n1,2\n", "text/csv", "text/csv"},
	} {
		m, _ := delivery(tc.body, nil)
		m.ContentType = tc.contentType
		if res := d.Handle(context.Background(), m, &publisher{}); res.Outcome != outcome.Succeeded {
			t.Errorf("%q: %+v", tc.body, res)
		}
		got := requests()[len(requests())-1]
		if string(got.stdin) != tc.body || got.params["CONTENT_TYPE"] != tc.want || got.params["CONTENT_LENGTH"] != fmt.Sprint(len(tc.body)) {
			t.Errorf("%q arrived as %q with %q", tc.body, got.stdin, got.params["CONTENT_TYPE"])
		}
	}
}

// The pool's form limits are enforced before PHP could cut a job short.
func TestFormLimits(t *testing.T) {
	addr, requests := fakeFPM(t, answerStatus(0, ""))
	var log bytes.Buffer
	d := newDispatcher(t, addr, &log)
	d.cfg.MaxMessageSize = 1 << 20
	d.cfg.FormLimits = phpform.Limits{MaxInputVars: 1000, MaxNestingLevel: 64}
	items := strings.Repeat(`1,`, 1199) + `1`
	res := d.Handle(context.Background(), must(delivery(`{"number":1,"items":[`+items+`]}`, nil)), &publisher{})
	if res.Outcome != outcome.DeadLettered || res.Reason != outcome.ReasonFormMismatch || !strings.Contains(res.Err.Error(), "max_input_vars") {
		t.Errorf("1200 items: %+v", res)
	}
	if len(requests()) != 0 {
		t.Error("the worker saw a job PHP would have cut short")
	}
}
