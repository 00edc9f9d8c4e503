package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fpmq/fpmq/services/internal/amqptest"
	"github.com/fpmq/fpmq/services/internal/phpform"
	"github.com/fpmq/fpmq/services/internal/testutil"
)

// jobs returns the arguments "1" to "n" and the numbers 1 to n.
func jobs(n int) (args []string, numbers []int64) {
	for i := 1; i <= n; i++ {
		args = append(args, strconv.Itoa(i))
		numbers = append(numbers, int64(i))
	}
	return args, numbers
}

// firstDifference describes the first line where got and want differ.
func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			return fmt.Sprintf("line %d is %q, want %q", i+1, g[i], w[i])
		}
	}
	return fmt.Sprintf("%d lines, want %d", len(g)-1, len(w)-1)
}

// checkAttempts checks what the broker received: every attempt at a job
// carries the first attempt's message ID, timestamp and body, and no two
// jobs share an ID. It returns how many times each number was published.
func checkAttempts(t *testing.T, msgs []amqptest.Publishing) map[int64]int {
	t.Helper()
	first := make(map[int64]amqptest.Publishing)
	owner := make(map[string]int64) // message ID -> number
	attempts := make(map[int64]int)
	for _, m := range msgs {
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(string(m.Body), `{"number":`), "}"), 10, 64)
		if err != nil || string(m.Body) != string(phpform.Marshal(n)) {
			t.Fatalf("broker got the body %q, not a job", string(m.Body))
		}
		attempts[n]++
		if f, ok := first[n]; !ok {
			first[n] = m
		} else if m.MessageId != f.MessageId || !m.Timestamp.Equal(f.Timestamp) {
			t.Errorf("job %d published again with ID %q at %v, first with ID %q at %v; want the same", n, m.MessageId, m.Timestamp, f.MessageId, f.Timestamp)
		}
		if o, ok := owner[m.MessageId]; ok && o != n {
			t.Errorf("jobs %d and %d share the message ID %q", o, n, m.MessageId)
		}
		owner[m.MessageId] = n
	}
	return attempts
}

// TestRunReconnects loses the connection while jobs are in flight: the caller
// reconnects, publishes again what was not confirmed with the same message
// IDs, and reports every job once, in input order.
func TestRunReconnects(t *testing.T) {
	tests := []struct {
		name   string
		jobs   int
		decide func(int, amqptest.Publishing) amqptest.Verdict
		conns  int             // connections the caller opens
		again  []int64         // jobs the broker must get twice; all others once
		pauses []time.Duration // before each reconnection
	}{
		{
			// 4 to 6 are published and unconfirmed when the connection
			// drops at 7; 8 to 10 perhaps published, but not received.
			name: "unconfirmed jobs published again",
			jobs: 10,
			decide: func(seq int, _ amqptest.Publishing) amqptest.Verdict {
				switch {
				case seq >= 4 && seq <= 6:
					return amqptest.Ignore
				case seq == 7:
					return amqptest.HangUp
				}
				return amqptest.Ack
			},
			conns:  2,
			again:  []int64{4, 5, 6, 7},
			pauses: []time.Duration{100 * time.Millisecond},
		},
		{
			// 2 is confirmed before 1, which is published again: 2 must
			// wait for it to keep the input order.
			name: "confirmed out of order",
			jobs: 3,
			decide: func(seq int, _ amqptest.Publishing) amqptest.Verdict {
				switch seq {
				case 1:
					return amqptest.Ignore
				case 3:
					return amqptest.HangUp
				}
				return amqptest.Ack
			},
			conns:  2,
			again:  []int64{1, 3},
			pauses: []time.Duration{100 * time.Millisecond},
		},
		{
			name:   "dropped right after a confirm",
			jobs:   5,
			decide: at(2, amqptest.AckHangUp),
			conns:  2,
			again:  nil, // 3 to 5 were never received
			pauses: []time.Duration{100 * time.Millisecond},
		},
		{
			// The second connection drops too, at 4 after confirming 2 and 3:
			// a new outage, whose first pause is the shortest again.
			name: "dropped twice",
			jobs: 6,
			decide: func(seq int, _ amqptest.Publishing) amqptest.Verdict {
				if seq == 2 || seq == 5 {
					return amqptest.HangUp
				}
				return amqptest.Ack
			},
			conns:  3,
			again:  []int64{2, 4},
			pauses: []time.Duration{100 * time.Millisecond, 100 * time.Millisecond},
		},
		{
			// The connection drops while the window is full: the caller
			// is waiting for confirms, not publishing.
			name:   "dropped with a full window",
			jobs:   maxOutstanding + 100,
			decide: at(maxOutstanding+50, amqptest.HangUp),
			conns:  2,
			again:  []int64{maxOutstanding + 50},
			pauses: []time.Duration{100 * time.Millisecond},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &amqptest.Server{OnPublish: tt.decide}
			useBroker(t, b)
			t.Setenv("AMQP_QUEUE_TYPE", "quorum")
			args, numbers := jobs(tt.jobs)
			clock := new(fastClock)
			code, stdout, stderr := callCaller(t.Context(), args, "", withPause(clock.pause))
			if code != exitOK || stderr != "" {
				t.Errorf("exit status %d, stderr %q; want %d and nothing", code, stderr, exitOK)
			}
			if want := sentLines(numbers...); stdout != want {
				t.Errorf("stdout differs from every job sent once, in order: %s", firstDifference(stdout, want))
			}
			if n := b.Connections(); n != tt.conns {
				t.Errorf("the caller connected %d times, want %d", n, tt.conns)
			}
			if !slices.Equal(clock.pauses, tt.pauses) {
				t.Errorf("paused %v before reconnecting, want %v", clock.pauses, tt.pauses)
			}
			declared := queues(b)
			if len(declared) != tt.conns || slices.ContainsFunc(declared, func(q string) bool { return q != "commands+durable x-queue-type=quorum" }) {
				t.Errorf("declared %q, want the quorum queue commands on each of %d connections", declared, tt.conns)
			}
			attempts := checkAttempts(t, b.Published())
			for _, n := range numbers {
				want := 1
				if slices.Contains(tt.again, n) {
					want = 2
				}
				if attempts[n] != want {
					t.Errorf("broker got job %d %d times, want %d", n, attempts[n], want)
				}
			}
		})
	}
}

// TestRunSurvivesAReset drops the connection with a TCP reset, which may
// destroy confirms on their way: the caller may then publish more jobs
// again, but still reports each one once.
func TestRunSurvivesAReset(t *testing.T) {
	b := &amqptest.Server{OnPublish: at(50, amqptest.Abort)}
	useBroker(t, b)
	args, numbers := jobs(100)
	code, stdout, stderr := callCaller(t.Context(), args, "")
	if code != exitOK || stderr != "" {
		t.Errorf("exit status %d, stderr %q; want %d and nothing", code, stderr, exitOK)
	}
	if want := sentLines(numbers...); stdout != want {
		t.Errorf("stdout differs from every job sent once, in order: %s", firstDifference(stdout, want))
	}
	if n := b.Connections(); n != 2 {
		t.Errorf("the caller connected %d times, want 2", n)
	}
	attempts := checkAttempts(t, b.Published())
	for _, n := range numbers {
		if attempts[n] < 1 || attempts[n] > 2 || n == 50 && attempts[n] != 2 {
			t.Errorf("broker got job %d %d times, want 1 or 2 (2 for job 50)", n, attempts[n])
		}
	}
}

// TestRunKeepsLosingTheConnection has the broker drop every connection at
// the first job after 1: the caller keeps trying until CALLER_TIMEOUT, with
// longer and longer pauses, as no connection gets a job through.
func TestRunKeepsLosingTheConnection(t *testing.T) {
	b := &amqptest.Server{OnPublish: from(2, amqptest.HangUp)}
	useBroker(t, b)
	t.Setenv("CALLER_TIMEOUT", "300ms")
	clock := &fastClock{lastPause: 4}
	start := time.Now()
	code, stdout, stderr := callCaller(t.Context(), []string{"1", "2", "3"}, "", withPause(clock.pause))
	elapsed := time.Since(start)
	if code != exitFailure {
		t.Errorf("exit status %d, want %d", code, exitFailure)
	}
	if stdout != sentLines(1) {
		t.Errorf("stdout = %q, want only job 1 sent", stdout)
	}
	// The deadline falls in the fourth pause: the last event is a loss,
	// seen either by the confirm that never came or by a publish on the
	// closing connection, whichever came first.
	const prefix = "caller: timed out after 300ms (CALLER_TIMEOUT): "
	lossSeen := strings.Contains(stderr, "connection lost: Exception (501)") || strings.Contains(stderr, "channel/connection is not open")
	if !strings.HasPrefix(stderr, prefix) || !lossSeen || !strings.HasSuffix(stderr, " (1 of 3 jobs confirmed)\n") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr = %q, want one line %q, the loss, %q", stderr, prefix, " (1 of 3 jobs confirmed)")
	}
	if n := b.Connections(); n != 4 {
		t.Errorf("the caller connected %d times, want 4", n)
	}
	if attempts := checkAttempts(t, b.Published()); attempts[2] != 4 {
		t.Errorf("broker got job 2 %d times, want 4", attempts[2])
	}
	if want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}; !slices.Equal(clock.pauses, want) {
		t.Errorf("paused %v before reconnecting, want %v: longer each time, as nothing got through", clock.pauses, want)
	}
	if elapsed < 300*time.Millisecond || elapsed > 4*time.Second {
		t.Errorf("took %v, want about 300ms", elapsed)
	}
}

// TestRunReconnectsAfterRefusals has the broker refuse two reconnections
// before it takes the third: the caller pauses 100 then 200 then 400 ms.
func TestRunReconnectsAfterRefusals(t *testing.T) {
	b := &amqptest.Server{
		OnPublish: at(2, amqptest.HangUp),
		Refuse:    func(conn int) bool { return conn == 2 || conn == 3 },
	}
	useBroker(t, b)
	clock := new(fastClock)
	start := time.Now()
	code, stdout, stderr := callCaller(t.Context(), []string{"1", "2", "3"}, "", withPause(clock.pause))
	elapsed := time.Since(start)
	if code != exitOK || stderr != "" {
		t.Errorf("exit status %d, stderr %q; want %d and nothing", code, stderr, exitOK)
	}
	if stdout != sentLines(1, 2, 3) {
		t.Errorf("stdout = %q, want jobs 1 to 3 sent", stdout)
	}
	if n := b.Connections(); n != 4 {
		t.Errorf("the caller connected %d times, want 4", n)
	}
	if want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}; !slices.Equal(clock.pauses, want) {
		t.Errorf("paused %v before reconnecting, want %v", clock.pauses, want)
	}
	if elapsed > 5*time.Second {
		t.Errorf("took %v, want the pauses (a hundredth of 100, 200 and 400 ms) and little more", elapsed)
	}
}

// TestRunPausesOnTheClock runs without a test clock: the pause before
// reconnecting, reconnectBackoff's first, is waited out for real.
func TestRunPausesOnTheClock(t *testing.T) {
	b := &amqptest.Server{OnPublish: at(2, amqptest.HangUp)}
	useBroker(t, b)
	var stdout strings.Builder
	start := time.Now()
	code := run(t.Context(), []string{"1", "2"}, strings.NewReader(""), &stdout, io.Discard)
	elapsed := time.Since(start)
	if code != exitOK || stdout.String() != sentLines(1, 2) || b.Connections() != 2 {
		t.Errorf("exit status %d, stdout %q, %d connections; want %d, jobs 1 and 2 sent, 2", code, stdout.String(), b.Connections(), exitOK)
	}
	if first := reconnectBackoff.Delay(0); elapsed < first {
		t.Errorf("took %v, less than the first pause, %v", elapsed, first)
	}
}

// TestRunBrokerGoneAfterLoss has the broker refuse every reconnection: the
// caller gives up at CALLER_TIMEOUT, which falls in the third pause, with
// the last attempt's error.
func TestRunBrokerGoneAfterLoss(t *testing.T) {
	b := &amqptest.Server{
		OnPublish: at(2, amqptest.HangUp),
		Refuse:    func(conn int) bool { return conn > 1 },
	}
	useBroker(t, b)
	t.Setenv("CALLER_TIMEOUT", "300ms")
	clock := &fastClock{lastPause: 3}
	code, stdout, stderr := callCaller(t.Context(), []string{"1", "2", "3"}, "", withPause(clock.pause))
	if code != exitFailure {
		t.Errorf("exit status %d, want %d", code, exitFailure)
	}
	if stdout != sentLines(1) {
		t.Errorf("stdout = %q, want only job 1 sent", stdout)
	}
	const prefix = "caller: timed out after 300ms (CALLER_TIMEOUT): reconnect: connect to amqp://u:xxxxx@"
	if !strings.HasPrefix(stderr, prefix) || !strings.HasSuffix(stderr, " (1 of 3 jobs confirmed)\n") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr = %q, want one line %q...%q", stderr, prefix, " (1 of 3 jobs confirmed)")
	}
	if strings.Contains(stderr, "secretpw") {
		t.Errorf("stderr shows the password: %q", stderr)
	}
}

// TestRunInterruptedWhileReconnecting cancels the run while the broker
// refuses reconnections: the caller stops at once, with the count.
func TestRunInterruptedWhileReconnecting(t *testing.T) {
	b := &amqptest.Server{
		OnPublish: at(2, amqptest.HangUp),
		Refuse:    func(conn int) bool { return conn > 1 },
	}
	useBroker(t, b)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var code int
	var stdout, stderr string
	ended := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(ended)
		code, stdout, stderr = callCaller(ctx, []string{"1", "2", "3"}, "")
	}()
	// Cancel once the caller is past its first connection.
	testutil.Eventually(t, 5*time.Second, "the caller reconnecting", func() bool { return b.Connections() >= 2 })
	cancel()
	<-ended
	elapsed := time.Since(start)
	if code != exitFailure || stdout != sentLines(1) {
		t.Errorf("exit status %d, stdout %q; want %d and only job 1 sent", code, stdout, exitFailure)
	}
	if !strings.HasPrefix(stderr, "caller: interrupted: ") || !strings.HasSuffix(stderr, " (1 of 3 jobs confirmed)\n") {
		t.Errorf("stderr = %q, want the interruption and the count", stderr)
	}
	if elapsed > 5*time.Second {
		t.Errorf("took %v, want well under CALLER_TIMEOUT (10s)", elapsed)
	}
}

func TestReporter(t *testing.T) {
	var out strings.Builder
	r := &reporter{w: &out, labels: []string{"10", "20", "30", "40", "50"}, held: make(map[int]bool)}
	step := func(i int, ok bool, want string) {
		t.Helper()
		out.Reset()
		r.settle(i, ok)
		if got := out.String(); got != want {
			t.Errorf("settle(%d, %v) printed %q, want %q", i, ok, got, want)
		}
	}
	step(1, true, "")             // waits for 0
	step(3, true, "")             // waits for 0 and 2
	step(0, false, sentLines(20)) // 0 failed: 1 is next
	step(2, true, sentLines(30, 40))
	out.Reset()
	r.finish()
	if out.String() != "" || r.confirmed != 3 || r.next != 4 {
		t.Errorf("after finish: printed %q, %d confirmed, next %d; want nothing, 3, 4", out.String(), r.confirmed, r.next)
	}

	// Job 0 never settles: finish prints what waited for it.
	out.Reset()
	r = &reporter{w: &out, labels: []string{"10", "20", "30", "40"}, held: make(map[int]bool)}
	r.settle(3, true)
	r.settle(1, true)
	r.settle(2, false)
	if out.String() != "" {
		t.Errorf("printed %q before job 0 settled", out.String())
	}
	r.finish()
	if out.String() != sentLines(20, 40) || len(r.held) != 0 {
		t.Errorf("finish printed %q and kept %v, want jobs 20 and 40 and nothing held", out.String(), slices.Collect(maps.Keys(r.held)))
	}
}

// progressRecorder is a progress line that keeps what a run shows on it:
// each Update's text, and "<clear>" for each Clear. (The line's own timing,
// which shows nothing in a run's first half second, is progress's to
// test.)
type progressRecorder struct {
	mu    sync.Mutex
	shown []string
}

func (p *progressRecorder) Update(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.shown = append(p.shown, fmt.Sprintf(format, args...))
}

func (p *progressRecorder) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.shown = append(p.shown, "<clear>")
}

// TestPublishShowsProgress: publish shows on its progress line how many
// jobs are confirmed and published as it goes, and erases the line at the
// end, leaving the terminal clean for the error or the prompt. (Where
// stderr is not a terminal, run passes no line at all:
// TestRunPublishesManyFromStdin checks that stderr stays empty.)
func TestPublishShowsProgress(t *testing.T) {
	const count = 400
	b := &amqptest.Server{}
	useBroker(t, b)
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	args, _ := jobs(count)
	in, err := parseInput(args, nil)
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	var line progressRecorder
	confirmed, err := publish(t.Context(), cfg, in, &stdout, &line)
	if err != nil || confirmed != count {
		t.Fatalf("publish = %d, %v; want %d, nil", confirmed, err, count)
	}
	shown := line.shown
	if len(shown) < 2 || shown[len(shown)-1] != "<clear>" {
		t.Fatalf("progress %q: want updates, then the line erased at the end", shown)
	}
	if last, want := shown[len(shown)-2], fmt.Sprintf("%d of %d jobs confirmed, %d published", count, count, count); last != want {
		t.Errorf("last progress %q, want %q", last, want)
	}
	for _, text := range shown[:len(shown)-1] {
		if !strings.Contains(text, fmt.Sprintf(" of %d jobs confirmed, ", count)) || strings.Contains(text, "\n") {
			t.Errorf("progress %q: want one line with the count of jobs confirmed", text)
			break
		}
	}
	if strings.Count(stdout.String(), "\n") != count {
		t.Errorf("stdout has %d lines, want %d", strings.Count(stdout.String(), "\n"), count)
	}
}

// TestReporterClearsTheProgressFirst: on a terminal the job lines share the
// screen with the progress line, which must be erased before each of them.
func TestReporterClearsTheProgressFirst(t *testing.T) {
	var out bytes.Buffer
	r := &reporter{w: &out, labels: []string{"7", "8"}, held: map[int]bool{}, before: func() { out.WriteString("<clear>") }}
	r.settle(1, true) // held until 7 is settled
	r.settle(0, true)
	if want := "<clear> [x] Message sent: 7\n<clear> [x] Message sent: 8\n"; out.String() != want {
		t.Errorf("printed %q, want %q", out.String(), want)
	}
}

// TestRunMovesToAnotherNode publishes to a cluster of two nodes (AMQP_URL's
// host replaced by each of AMQP_ADDRESSES): the first drops the connection
// with jobs unconfirmed and refuses to come back; the caller publishes them
// again, with their IDs, through the second node, and the rest after them.
func TestRunMovesToAnotherNode(t *testing.T) {
	a := &amqptest.Server{
		OnPublish: func(seq int, _ amqptest.Publishing) amqptest.Verdict {
			switch {
			case seq >= 4 && seq <= 6:
				return amqptest.Ignore
			case seq == 7:
				return amqptest.HangUp
			}
			return amqptest.Ack
		},
		Refuse: func(conn int) bool { return conn > 1 },
	}
	b := &amqptest.Server{}
	useBroker(t, a)
	useBroker(t, b)
	t.Setenv("AMQP_URL", "amqp://u:secretpw@rabbitmq:5672/")
	t.Setenv("AMQP_ADDRESSES", a.Addr+","+b.Addr)
	args, numbers := jobs(20)
	code, stdout, stderr := callCaller(t.Context(), args, "")
	if code != exitOK || stderr != "" {
		t.Errorf("exit status %d, stderr %q; want %d and nothing", code, stderr, exitOK)
	}
	if want := sentLines(numbers...); stdout != want {
		t.Errorf("stdout differs from every job sent once, in order: %s", firstDifference(stdout, want))
	}
	if na, nb := a.Connections(), b.Connections(); na != 1 || nb != 1 {
		t.Errorf("the caller connected %d times to the first node and %d to the second, want once each", na, nb)
	}
	first, second := checkAttempts(t, a.Published()), checkAttempts(t, b.Published())
	all := checkAttempts(t, append(a.Published(), b.Published()...))
	for _, n := range numbers {
		switch {
		case n <= 3 && (first[n] != 1 || second[n] != 0):
			t.Errorf("job %d, confirmed by the first node: published %d and %d times, want once to the first", n, first[n], second[n])
		case n >= 4 && n <= 7 && (first[n] != 1 || second[n] != 1):
			t.Errorf("job %d, unconfirmed at the loss: published %d and %d times, want once to each node", n, first[n], second[n])
		case n > 7 && all[n] != 1:
			t.Errorf("job %d, never received before the loss: published %d times, want once", n, all[n])
		}
	}
}

// TestRunNoNodeAnswers lists the nodes tried, each with its error, and
// never the password.
func TestRunNoNodeAnswers(t *testing.T) {
	t.Setenv("AMQP_URL", "amqp://u:secretpw@rabbitmq:5672/")
	t.Setenv("AMQP_ADDRESSES", "127.0.0.1:1, 127.0.0.1:2")
	code, stdout, stderr := callCaller(t.Context(), []string{"1"}, "")
	if code != exitFailure || stdout != "" {
		t.Errorf("exit status %d, stdout %q; want %d and nothing", code, stdout, exitFailure)
	}
	for _, want := range []string{"no broker reached, 2 nodes tried: ", "connect to amqp://u:xxxxx@127.0.0.1:1/: no broker at 127.0.0.1:1", "; connect to amqp://u:xxxxx@127.0.0.1:2/"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q does not say %q", stderr, want)
		}
	}
	if strings.Contains(stderr, "secretpw") {
		t.Errorf("stderr shows the password: %q", stderr)
	}
	t.Setenv("AMQP_ADDRESSES", "127.0.0.1")
	if code, _, stderr := callCaller(t.Context(), []string{"1"}, ""); code != exitUsage || !strings.Contains(stderr, `AMQP_ADDRESSES: entry 1 "127.0.0.1": want HOST:PORT`) {
		t.Errorf("exit status %d, stderr %q; want %d naming AMQP_ADDRESSES", code, stderr, exitUsage)
	}
}

// writeCounter is an io.Writer, safe for concurrent use, that keeps what is
// written to it and counts the writes.
type writeCounter struct {
	mu     sync.Mutex
	b      strings.Builder
	writes int
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return w.b.Write(p)
}

func (w *writeCounter) get() (string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String(), w.writes
}

// TestReporterBuffers: a buffered reporter writes nothing until it is
// flushed or finished, and then all its lines at once.
func TestReporterBuffers(t *testing.T) {
	args, numbers := jobs(500)
	var out writeCounter
	r := &reporter{w: &out, labels: args, held: make(map[int]bool)}
	r.buffer(64 << 10)
	for i := range args {
		r.settle(i, true)
	}
	if got, writes := out.get(); writes != 0 {
		t.Errorf("%d writes (%d bytes) before the flush, want none", writes, len(got))
	}
	r.finish()
	if got, writes := out.get(); got != sentLines(numbers...) || writes != 1 {
		t.Errorf("after finish: %d bytes in %d writes, want the 500 lines in one", len(got), writes)
	}
}

// TestRunBuffersItsLines: to a pipe or a file, the lines of many jobs
// arrive whole and in order, in fewer writes than lines (how many depends
// on how often the caller has to wait for a confirm).
func TestRunBuffersItsLines(t *testing.T) {
	useBroker(t, &amqptest.Server{})
	args, numbers := jobs(500)
	want := sentLines(numbers...)
	var out writeCounter
	if code := run(t.Context(), args, strings.NewReader(""), &out, io.Discard); code != exitOK {
		t.Fatalf("exit status %d, want %d", code, exitOK)
	}
	if got, writes := out.get(); got != want || writes >= 250 {
		t.Errorf("stdout: %d bytes in %d writes; want the %d bytes of 500 lines in fewer than 250", len(got), writes, len(want))
	}
}

// TestRunShowsConfirmedJobsWhileItWaits: a buffered line is written out
// before the caller waits for a confirm, so that a job confirmed long before
// the run ends is not reported only at its end.
func TestRunShowsConfirmedJobsWhileItWaits(t *testing.T) {
	b := &amqptest.Server{OnPublish: from(2, amqptest.Ignore)} // job 2 is never confirmed
	useBroker(t, b)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out writeCounter
	var code int
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		code = run(ctx, []string{"1", "2"}, strings.NewReader(""), &out, io.Discard)
	}()
	testutil.Eventually(t, 3*time.Second, "job 1 on stdout while job 2's confirm is awaited", func() bool {
		got, _ := out.get()
		return got == sentLines(1)
	})
	select {
	case <-ended:
		t.Fatalf("run ended (exit status %d) before job 1 was reported on its own", code)
	default:
	}
	cancel() // rather than wait for CALLER_TIMEOUT
	<-ended
	if code != exitFailure {
		t.Errorf("exit status %d, want %d (job 2 never confirmed)", code, exitFailure)
	}
}
