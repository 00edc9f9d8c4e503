package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/fpmq/fpmq/services/internal/amqptest"
	"github.com/fpmq/fpmq/services/internal/backoff"
	"github.com/fpmq/fpmq/services/internal/phpform"
	"github.com/fpmq/fpmq/services/internal/testutil"
)

// closedURL points at a port where nothing listens, so that a regression
// that connects before validating shows up as exit status 1 rather than 2.
const closedURL = "amqp://u:secretpw@127.0.0.1:1/"

// callCaller runs the caller in-process and returns its exit status and
// output. Its reconnection pauses are a hundred times shorter (fastClock),
// unless clock says otherwise.
func callCaller(ctx context.Context, args []string, stdin string, clock ...clockOption) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	clock = append([]clockOption{withPause(new(fastClock).pause)}, clock...)
	code = run(ctx, args, strings.NewReader(stdin), &out, &errOut, clock...)
	return code, out.String(), errOut.String()
}

// fastClock records the reconnection pauses that a run asks for, and waits
// a hundredth of each: the pauses keep their order and proportions, and a
// test of reconnections takes milliseconds.
type fastClock struct {
	pauses []time.Duration // as asked for, in order
	// If above 0, the lastPause-th pause lasts until the run's context
	// ends, so that CALLER_TIMEOUT ends the run in that pause rather
	// than in whatever the run does after it.
	lastPause int
}

func (c *fastClock) pause(ctx context.Context, d time.Duration) bool {
	c.pauses = append(c.pauses, d)
	if len(c.pauses) == c.lastPause {
		<-ctx.Done()
		return false
	}
	return backoff.Sleep(ctx, d/100)
}

func TestRunRejectsBadArguments(t *testing.T) {
	t.Setenv("AMQP_URL", closedURL)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no arguments", nil, "caller: no numbers given"},
		{"not a number", []string{"abc"}, `caller: invalid number "abc" (argument 1)`},
		{"second argument", []string{"1", "abc"}, `caller: invalid number "abc" (argument 2)`},
		{"fraction", []string{"1.5"}, `caller: invalid number "1.5" (argument 1)`},
		{"exponent", []string{"1e3"}, `caller: invalid number "1e3" (argument 1)`},
		{"empty", []string{"1", "2", ""}, `caller: invalid number "" (argument 3)`},
		{"plus alone", []string{"+"}, `caller: invalid number "+" (argument 1)`},
		{"hex", []string{"0x10"}, `caller: invalid number "0x10" (argument 1)`},
		{"underscore", []string{"1_000"}, `caller: invalid number "1_000" (argument 1)`},
		{"space", []string{" 1"}, `caller: invalid number " 1" (argument 1)`},
		{"above int64", []string{"9223372036854775808"}, `caller: invalid number "9223372036854775808" (argument 1): out of the int64 range`},
		{"below int64", []string{"-9223372036854775809"}, `(argument 1): out of the int64 range`},
		{"dash after numbers", []string{"1", "-"}, `caller: "-" (read standard input) must be the only argument (argument 2)`},
		{"dash before numbers", []string{"-", "1"}, `must be the only argument (argument 1)`},
		{"dash after a bad number", []string{"x", "-"}, `caller: "-" (read standard input) must be the only argument (argument 2)`},
		{"long value is clipped", []string{strings.Repeat("x", 100)}, `"` + strings.Repeat("x", 40) + `..." (argument 1)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := callCaller(t.Context(), tt.args, "")
			checkUsageError(t, code, stdout, stderr, tt.want)
		})
	}
}

func TestRunRejectsBadStdin(t *testing.T) {
	t.Setenv("AMQP_URL", closedURL)
	tests := []struct {
		name  string
		stdin string
		want  string
	}{
		{"empty", "", "caller: no numbers on standard input"},
		{"not a number", "1\n2\nabc\n", `caller: invalid number "abc" (stdin line 3)`},
		{"blank line", "1\n\n2\n", `caller: invalid number "" (stdin line 2)`},
		{"blank line with CR", "1\r\n\r\n", `caller: invalid number "" (stdin line 2)`},
		{"only a newline", "\n", `caller: invalid number "" (stdin line 1)`},
		{"trailing space", "1\n2 \n", `caller: invalid number "2 " (stdin line 2)`},
		{"two CRs", "1\r\r\n", `caller: invalid number "1\r" (stdin line 1)`},
		{"last line without newline", "1\nx", `caller: invalid number "x" (stdin line 2)`},
		{"bad line after many good ones", strings.Repeat("7\n", 10000) + "1.5\n", `caller: invalid number "1.5" (stdin line 10001)`},
		{"above int64", "9223372036854775808\n", `(stdin line 1): out of the int64 range`},
		{"dash", "-\n", `caller: invalid number "-" (stdin line 1)`},
		{"line too long", "1\n" + strings.Repeat("9", 100000) + "\n", "caller: invalid number (stdin line 2): line too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := callCaller(t.Context(), []string{"-"}, tt.stdin)
			checkUsageError(t, code, stdout, stderr, tt.want)
		})
	}
}

// checkUsageError checks the outcome of a usage error: status 2, the error
// on the first line of stderr followed by the short synopsis (not the whole
// -h text), nothing on stdout.
func checkUsageError(t *testing.T, code int, stdout, stderr, want string) {
	t.Helper()
	if code != exitUsage {
		t.Errorf("exit status %d, want %d; stderr:\n%s", code, exitUsage, stderr)
	}
	firstLine, rest, _ := strings.Cut(stderr, "\n")
	if !strings.Contains(firstLine, want) {
		t.Errorf("first line of stderr %q does not contain %q", firstLine, want)
	}
	if rest != synopsis {
		t.Errorf("stderr after the error:\n%s\nwant the synopsis:\n%s", rest, synopsis)
	}
	if stdout != "" {
		t.Errorf("stdout = %q, want nothing", stdout)
	}
}

func TestRunStdinReadError(t *testing.T) {
	t.Setenv("AMQP_URL", closedURL)
	var out, errOut bytes.Buffer
	stdin := io.MultiReader(strings.NewReader("1\n2\n"), iotest.ErrReader(errors.New("disk on fire")))
	code := run(t.Context(), []string{"-"}, stdin, &out, &errOut)
	if want := "caller: read standard input: disk on fire (0 of 2 jobs confirmed)\n"; code != exitFailure || errOut.String() != want {
		t.Errorf("exit status %d, stderr %q; want %d and %q", code, errOut.String(), exitFailure, want)
	}
}

// TestRunFailuresSayHowManyConfirmed goes through the failures that
// happen before any job is published: each ends, as every exit status 1
// does, with how many jobs the broker confirmed.
func TestRunFailuresSayHowManyConfirmed(t *testing.T) {
	certAddr, certCA := amqptest.RequireClientCert(t, amqptest.Reset)
	rejecting := &amqptest.Server{RejectDeclare: rejectReason}
	rejecting.Start(t)
	interrupted, cancel := context.WithCancel(t.Context())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		env  map[string]string
		want string // in the error, before the count
	}{
		{"nothing listens", t.Context(), map[string]string{"AMQP_URL": closedURL},
			"connect to amqp://u:xxxxx@127.0.0.1:1/: no broker at 127.0.0.1:1 (is RabbitMQ running, and is the host right?)"},
		{"silent broker", t.Context(), map[string]string{"AMQP_URL": "amqp://u:secretpw@" + silentServer(t) + "/", "CALLER_TIMEOUT": "100ms"},
			"timed out after 100ms (CALLER_TIMEOUT): connect to"},
		{"interrupted", interrupted, map[string]string{"AMQP_URL": "amqp://u:secretpw@" + silentServer(t) + "/"},
			"interrupted: connect to"},
		{"queue declared otherwise", t.Context(), map[string]string{"AMQP_URL": rejecting.URL},
			"queue exists with other arguments"},
		{"no client certificate", t.Context(), map[string]string{"AMQP_URL": "amqps://u:secretpw@" + certAddr + "/", "AMQP_CA_FILE": certCA},
			"the broker closed the TLS connection: it may require a client certificate (AMQP_CERT_FILE/AMQP_KEY_FILE): "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, stdout, stderr := callCaller(tc.ctx, []string{"1", "2", "3"}, "")
			checkFailure(t, code, stdout, stderr, tc.want)
			if !strings.HasSuffix(stderr, " (0 of 3 jobs confirmed)\n") {
				t.Errorf("stderr %q does not end with the count of jobs confirmed", stderr)
			}
		})
	}
}

func TestRunHelp(t *testing.T) {
	// Help must not need any configuration.
	t.Setenv("AMQP_URL", "")
	os.Unsetenv("AMQP_URL")
	for _, arg := range []string{"-h", "-help", "--help"} {
		t.Run(arg, func(t *testing.T) {
			code, stdout, stderr := callCaller(t.Context(), []string{"1", arg}, "")
			if code != exitOK {
				t.Errorf("exit status %d, want %d", code, exitOK)
			}
			for _, want := range []string{"caller [FLAGS] NUMBER...", "caller [FLAGS] -", "--json OBJECT", "--type NAME", "--header K=V", "--delay DURATION", "--priority N", "AMQP_MAX_PRIORITY", "DELAY_MAX", "AMQP_URL", "AMQP_QUEUE", "commands", "AMQP_QUEUE_TYPE", "classic", "quorum", "CALLER_TIMEOUT", "10s", "AMQP_CA_FILE", "AMQP_CERT_FILE", "AMQP_KEY_FILE"} {
				if !strings.Contains(stdout, want) {
					t.Errorf("usage on stdout does not contain %q:\n%s", want, stdout)
				}
			}
			if stderr != "" {
				t.Errorf("stderr = %q, want nothing", stderr)
			}
		})
	}
}

func TestRunRejectsBadConfiguration(t *testing.T) {
	tests := []struct {
		name string
		env  []string // KEY=VALUE sets a variable, a bare KEY unsets it
		want string
	}{
		{"missing AMQP_URL", []string{"AMQP_URL"}, "AMQP_URL"},
		{"empty AMQP_URL", []string{"AMQP_URL="}, "AMQP_URL is empty"},
		{"not an AMQP URL", []string{"AMQP_URL=http://rabbitmq/"}, "AMQP_URL http://rabbitmq/ is not an AMQP URL"},
		{"bad port", []string{"AMQP_URL=amqp://u:secretpw@rabbitmq:99999999999/"}, "AMQP_URL"},
		{"unparsable URL", []string{"AMQP_URL=amqp://u:secretpw@rabbit%zz/"}, "AMQP_URL"},
		{"empty AMQP_QUEUE", []string{"AMQP_URL=" + closedURL, "AMQP_QUEUE="}, "AMQP_QUEUE is empty"},
		{"bad AMQP_QUEUE_TYPE", []string{"AMQP_URL=" + closedURL, "AMQP_QUEUE_TYPE=stream"}, `configuration: AMQP_QUEUE_TYPE: queue type "stream": want classic or quorum`},
		{"capitalised AMQP_QUEUE_TYPE", []string{"AMQP_URL=" + closedURL, "AMQP_QUEUE_TYPE=Quorum"}, `AMQP_QUEUE_TYPE: queue type "Quorum"`},
		{"empty AMQP_QUEUE_TYPE", []string{"AMQP_URL=" + closedURL, "AMQP_QUEUE_TYPE="}, `AMQP_QUEUE_TYPE: queue type ""`},
		{"AMQP_MAX_PRIORITY above 255", []string{"AMQP_URL=" + closedURL, "AMQP_MAX_PRIORITY=256"}, "AMQP_MAX_PRIORITY must be 0 to 255, not 256"},
		{"DELAY_MAX under a second", []string{"AMQP_URL=" + closedURL, "DELAY_MAX=10ms"}, "DELAY_MAX must be at least 1s"},
		{"bad CALLER_TIMEOUT", []string{"AMQP_URL=" + closedURL, "CALLER_TIMEOUT=soon"}, "CALLER_TIMEOUT"},
		{"zero CALLER_TIMEOUT", []string{"AMQP_URL=" + closedURL, "CALLER_TIMEOUT=0s"}, "CALLER_TIMEOUT must be positive"},
		{"negative CALLER_TIMEOUT", []string{"AMQP_URL=" + closedURL, "CALLER_TIMEOUT=-1s"}, "CALLER_TIMEOUT must be positive"},
		{"unreadable AMQP_CA_FILE", []string{"AMQP_URL=amqps://u:secretpw@127.0.0.1:1/", "AMQP_CA_FILE=/nonexistent/ca.pem"}, "configuration: AMQP_CA_FILE: CA file /nonexistent/ca.pem: no such file"},
		{"AMQP_CA_FILE without amqps", []string{"AMQP_URL=" + closedURL, "AMQP_CA_FILE=/nonexistent/ca.pem"}, "configuration: AMQP_CA_FILE is set, but AMQP_URL is not amqps://"},
		{"client certificate without amqps", []string{"AMQP_URL=" + closedURL, "AMQP_CERT_FILE=/c.pem", "AMQP_KEY_FILE=/k.pem"}, "AMQP_CERT_FILE and AMQP_KEY_FILE are set, but AMQP_URL is not amqps://"},
		{"AMQP_KEY_FILE without certificate", []string{"AMQP_URL=amqps://u:secretpw@127.0.0.1:1/", "AMQP_KEY_FILE=/nonexistent/k.pem"}, "configuration: AMQP_CERT_FILE: client certificate file: missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, kv := range tt.env {
				k, v, set := strings.Cut(kv, "=")
				t.Setenv(k, v) // also restores the variable after the test
				if !set {
					os.Unsetenv(k)
				}
			}
			code, stdout, stderr := callCaller(t.Context(), []string{"42"}, "")
			checkUsageError(t, code, stdout, stderr, tt.want)
			if strings.Contains(stderr, "secretpw") {
				t.Errorf("stderr shows the password:\n%s", stderr)
			}
		})
	}
}

func TestLoadConfigTLS(t *testing.T) {
	t.Setenv("AMQP_URL", "amqps://u:secretpw@rabbitmq:5671/")
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

func TestRunUnreachableBroker(t *testing.T) {
	t.Setenv("AMQP_URL", closedURL)
	t.Setenv("CALLER_TIMEOUT", "2s")
	start := time.Now()
	code, stdout, stderr := callCaller(t.Context(), []string{"1", "2"}, "")
	checkFailure(t, code, stdout, stderr, "caller: connect to amqp://u:xxxxx@127.0.0.1:1/")
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("took %v, want well under 5s", elapsed)
	}
}

// TestRunTimeout connects to a server that never answers, so only
// CALLER_TIMEOUT ends the call.
func TestRunTimeout(t *testing.T) {
	addr := silentServer(t)
	t.Setenv("AMQP_URL", "amqp://u:secretpw@"+addr+"/")
	t.Setenv("CALLER_TIMEOUT", "100ms")
	start := time.Now()
	code, stdout, stderr := callCaller(t.Context(), []string{"1"}, "")
	checkFailure(t, code, stdout, stderr, "caller: timed out after 100ms (CALLER_TIMEOUT): connect to amqp://u:xxxxx@")
	if elapsed := time.Since(start); elapsed < 100*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("took %v, want about 100ms", elapsed)
	}
}

func TestRunInterrupted(t *testing.T) {
	addr := silentServer(t)
	t.Setenv("AMQP_URL", "amqp://u:secretpw@"+addr+"/")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	code, stdout, stderr := callCaller(ctx, []string{"1"}, "")
	checkFailure(t, code, stdout, stderr, "caller: interrupted: connect to")
}

// silentServer accepts TCP connections and never says anything.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}

// checkFailure checks the outcome of a failed call: status 1, one line on
// stderr containing want and not the password, no job reported as sent.
func checkFailure(t *testing.T, code int, stdout, stderr, want string) {
	t.Helper()
	if code != exitFailure {
		t.Errorf("exit status %d, want %d; stderr:\n%s", code, exitFailure, stderr)
	}
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr %q does not contain %q", stderr, want)
	}
	if strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr is not one line: %q", stderr)
	}
	if strings.Contains(stderr, "secretpw") {
		t.Errorf("stderr shows the password: %q", stderr)
	}
	if strings.Contains(stdout, "sent") {
		t.Errorf("stdout reports a job as sent: %q", stdout)
	}
}

// sentLines returns what the caller prints for the confirmed numbers.
func sentLines(numbers ...int64) string {
	var b strings.Builder
	for _, n := range numbers {
		fmt.Fprintf(&b, " [x] Message sent: %d\n", n)
	}
	return b.String()
}

// useBroker starts b and points the caller at it, with the user and
// password that the tests look for in the output.
func useBroker(t *testing.T, b *amqptest.Server) {
	t.Helper()
	if b.ChannelCloseText == "" {
		b.ChannelCloseText = closeChannelReason
	}
	b.Start(t)
	t.Setenv("AMQP_URL", "amqp://u:secretpw@"+b.Addr+"/")
	t.Setenv("CALLER_TIMEOUT", "10s")
}

// queues returns the queue declarations b received, each as the queue's
// name, "+durable" if durable, then " key=value" per argument.
func queues(b *amqptest.Server) []string {
	var names []string
	for _, d := range b.Declared() {
		name := d.Queue
		if d.Durable {
			name += "+durable"
		}
		for _, k := range slices.Sorted(maps.Keys(d.Args)) {
			name += fmt.Sprintf(" %s=%v", k, d.Args[k])
		}
		names = append(names, name)
	}
	return names
}

// rejectReason is RabbitMQ's text when a classic queue is declared over a
// quorum one.
const rejectReason = "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'commands' in vhost '/': received none but current is the value 'quorum' of type 'longstr'"

// closeChannelReason is RabbitMQ's text when a message is too large.
const closeChannelReason = "PRECONDITION_FAILED - message size 12 is larger than configured max size 10"

func TestRunPublishes(t *testing.T) {
	b := &amqptest.Server{}
	useBroker(t, b)
	start := time.Now()
	code, stdout, stderr := callCaller(t.Context(), []string{"42", "-7", "9223372036854775807"}, "")
	if code != exitOK || stderr != "" {
		t.Fatalf("exit status %d, stderr %q; want %d and nothing", code, stderr, exitOK)
	}
	if want := sentLines(42, -7, 9223372036854775807); stdout != want {
		t.Errorf("stdout = %q, want %q", stdout, want)
	}
	if got := queues(b); !slices.Equal(got, []string{"commands+durable"}) {
		t.Errorf("declared queues %q, want the durable queue commands", got)
	}
	msgs := b.Published()
	if len(msgs) != 3 {
		t.Fatalf("broker got %d messages, want 3", len(msgs))
	}
	hexID := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for i, n := range []int64{42, -7, 9223372036854775807} {
		m := msgs[i]
		if string(m.Body) != string(phpform.Marshal(n)) {
			t.Errorf("message %d body %q, want %q", i, string(m.Body), phpform.Marshal(n))
		}
		if m.Exchange != "" || m.RoutingKey != "commands" || !m.Mandatory {
			t.Errorf("message %d published to exchange %q key %q mandatory %v; want the default exchange, key commands, mandatory", i, m.Exchange, m.RoutingKey, m.Mandatory)
		}
		if m.ContentType != "application/json" || m.DeliveryMode != 2 {
			t.Errorf("message %d content type %q delivery mode %d; want application/json, persistent (2)", i, m.ContentType, m.DeliveryMode)
		}
		if !hexID.MatchString(m.MessageId) || i > 0 && m.MessageId == msgs[i-1].MessageId {
			t.Errorf("message %d ID %q is not a fresh 128-bit hex ID", i, m.MessageId)
		}
		if m.Timestamp.Before(start.Truncate(time.Second)) || m.Timestamp.After(time.Now()) {
			t.Errorf("message %d timestamp %v is not the time of publishing", i, m.Timestamp)
		}
	}
}

func TestRunPublishesManyFromStdin(t *testing.T) {
	t.Setenv("AMQP_QUEUE", "other")
	b := &amqptest.Server{}
	useBroker(t, b)
	// More than two windows, so that publishing waits for confirms midway.
	count := 2*maxOutstanding + 5
	var in strings.Builder
	numbers := make([]int64, count)
	for i := range numbers {
		numbers[i] = int64(i * 3)
		in.WriteString(strconv.FormatInt(numbers[i], 10) + "\r\n")
	}
	code, stdout, stderr := callCaller(t.Context(), []string{"-"}, in.String())
	if code != exitOK || stderr != "" {
		t.Fatalf("exit status %d, stderr %q; want %d and nothing", code, stderr, exitOK)
	}
	if want := sentLines(numbers...); stdout != want {
		t.Errorf("stdout has %d lines, want %d in order", strings.Count(stdout, "\n"), count)
	}
	msgs := b.Published()
	if len(msgs) != count || msgs[count-1].RoutingKey != "other" {
		t.Errorf("broker got %d messages, want %d routed to other", len(msgs), count)
	}
}

// at settles publish n as v and all others as ack.
func at(n int, v amqptest.Verdict) func(int, amqptest.Publishing) amqptest.Verdict {
	return func(seq int, _ amqptest.Publishing) amqptest.Verdict {
		if seq == n {
			return v
		}
		return amqptest.Ack
	}
}

// from settles publishes from n on as v and the ones before as ack.
func from(n int, v amqptest.Verdict) func(int, amqptest.Publishing) amqptest.Verdict {
	return func(seq int, _ amqptest.Publishing) amqptest.Verdict {
		if seq >= n {
			return v
		}
		return amqptest.Ack
	}
}

func TestRunUnconfirmed(t *testing.T) {
	tests := []struct {
		name    string
		decide  func(int, amqptest.Publishing) amqptest.Verdict
		timeout string
		sent    string // stdout
		want    string // in stderr
	}{
		{
			name:   "nacked",
			decide: at(2, amqptest.Nack),
			sent:   sentLines(1, 3),
			want:   "caller: broker nacked 2 (2 of 3 jobs confirmed)",
		},
		{
			name:   "returned",
			decide: at(2, amqptest.Return),
			sent:   sentLines(1, 3),
			want:   "caller: broker returned 2 as unroutable: 312 NO_ROUTE (2 of 3 jobs confirmed)",
		},
		{
			// Nothing is drained before the first confirm, so this one
			// needs the returns channel to have room.
			name:   "first returned",
			decide: at(1, amqptest.Return),
			sent:   sentLines(2, 3),
			want:   "caller: broker returned 1 as unroutable: 312 NO_ROUTE (2 of 3 jobs confirmed)",
		},
		{
			name:    "never confirmed",
			decide:  from(2, amqptest.Ignore),
			timeout: "300ms",
			sent:    sentLines(1),
			want:    "caller: timed out after 300ms (CALLER_TIMEOUT): wait for the confirm of 2: context deadline exceeded (1 of 3 jobs confirmed)",
		},
		{
			// The broker closes the channel alone: it refuses what the caller
			// did, and another connection would not change its mind. On the
			// last job, so that all three were published before.
			name:   "channel closed",
			decide: at(3, amqptest.CloseChannel),
			sent:   sentLines(1, 2),
			want:   `caller: 3 not confirmed: channel closed: Exception (406) Reason: "` + closeChannelReason + `" (2 of 3 jobs confirmed)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &amqptest.Server{OnPublish: tt.decide}
			useBroker(t, b)
			if tt.timeout != "" {
				t.Setenv("CALLER_TIMEOUT", tt.timeout)
			}
			code, stdout, stderr := callCaller(t.Context(), []string{"1", "2", "3"}, "")
			if code != exitFailure {
				t.Errorf("exit status %d, want %d", code, exitFailure)
			}
			if stdout != tt.sent {
				t.Errorf("stdout = %q, want %q", stdout, tt.sent)
			}
			if !strings.Contains(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr = %q, want one line containing %q", stderr, tt.want)
			}
			if strings.Contains(stderr, "secretpw") {
				t.Errorf("stderr shows the password: %q", stderr)
			}
			if n := b.Connections(); n != 1 {
				t.Errorf("the caller connected %d times, want once: a final failure is not retried", n)
			}
		})
	}
}

// TestRunStopsAfterAFailure has the broker nack the first job while later
// ones wait for room in the window: those are not published at all, while
// the ones already published are still waited for and reported.
func TestRunStopsAfterAFailure(t *testing.T) {
	b := &amqptest.Server{OnPublish: at(1, amqptest.Nack)}
	useBroker(t, b)
	args := make([]string, maxOutstanding+10)
	for i := range args {
		args[i] = strconv.Itoa(i + 1)
	}
	code, stdout, stderr := callCaller(t.Context(), args, "")
	if code != exitFailure {
		t.Errorf("exit status %d, want %d", code, exitFailure)
	}
	if got := len(b.Published()); got != maxOutstanding {
		t.Errorf("broker got %d messages, want %d (one window)", got, maxOutstanding)
	}
	if got := strings.Count(stdout, "sent"); got != maxOutstanding-1 || strings.Contains(stdout, "sent: 1\n") {
		t.Errorf("stdout reports %d jobs as sent, want %d without the first", got, maxOutstanding-1)
	}
	want := fmt.Sprintf("caller: broker nacked 1 (%d of %d jobs confirmed)\n", maxOutstanding-1, len(args))
	if stderr != want {
		t.Errorf("stderr = %q, want %q", stderr, want)
	}
}

// TestRunCloseHangs has a broker that never answers channel.close: closing
// must end at the deadline and not turn the nack into a timeout.
func TestRunCloseHangs(t *testing.T) {
	b := &amqptest.Server{OnPublish: at(1, amqptest.Nack), IgnoreChannelClose: true}
	useBroker(t, b)
	t.Setenv("CALLER_TIMEOUT", "300ms")
	start := time.Now()
	code, stdout, stderr := callCaller(t.Context(), []string{"1"}, "")
	checkFailure(t, code, stdout, stderr, "caller: broker nacked 1 (0 of 1 jobs confirmed)")
	if strings.Contains(stderr, "timed out") {
		t.Errorf("stderr %q blames a timeout for a nack", stderr)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("took %v, want about 300ms", elapsed)
	}
}

// TestRunDeclareRejected has the queue exist with other arguments: the
// caller says so in one line and does not retry, as only an operator can
// fix it.
func TestRunDeclareRejected(t *testing.T) {
	b := &amqptest.Server{RejectDeclare: rejectReason}
	useBroker(t, b)
	code, stdout, stderr := callCaller(t.Context(), []string{"1"}, "")
	want := `caller: declare queue "commands": queue exists with other arguments: ` + rejectReason + "; delete the queue or change the setting (0 of 1 jobs confirmed)\n"
	checkFailure(t, code, stdout, stderr, want)
	if stderr != want {
		t.Errorf("stderr = %q, want %q", stderr, want)
	}
	if n := len(b.Published()); n != 0 {
		t.Errorf("broker got %d messages after the declare failed, want 0", n)
	}
	if n := b.Connections(); n != 1 {
		t.Errorf("the caller connected %d times, want once", n)
	}
}

func TestRunDeclaresTheQueueType(t *testing.T) {
	for _, tt := range []struct{ queueType, want string }{
		{"classic", "commands+durable"}, // no arguments, as older versions declared it
		{"quorum", "commands+durable x-queue-type=quorum"},
	} {
		t.Run(tt.queueType, func(t *testing.T) {
			b := &amqptest.Server{}
			useBroker(t, b)
			t.Setenv("AMQP_QUEUE_TYPE", tt.queueType)
			code, stdout, stderr := callCaller(t.Context(), []string{"5"}, "")
			if code != exitOK || stdout != sentLines(5) || stderr != "" {
				t.Errorf("exit status %d, stdout %q, stderr %q; want %d, job 5 sent, nothing", code, stdout, stderr, exitOK)
			}
			if got := queues(b); !slices.Equal(got, []string{tt.want}) {
				t.Errorf("declared %q, want %q", got, tt.want)
			}
		})
	}
}
