//go:build integration

package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/fpmq/fpmq/integration/stack"
)

// traceScriptLog is where testdata/php/trace.php writes the trace context
// each run saw.
const traceScriptLog = stack.WorkerLogDir + "/trace.log"

// traceRecord is a line of traceScriptLog.
type traceRecord struct {
	Job         string `json:"job"`
	ID          string `json:"id"`
	Attempt     int    `json:"attempt"`
	Traceparent string `json:"traceparent"`
	Tracestate  string `json:"tracestate"`
}

// TestTracing follows jobs from the caller through the daemon's attempts
// to the script, with spans exported over OTLP/HTTP to a receiver in the
// test: parent and child, the attributes, one span per attempt, the trace
// kept through the dead-letter queue and linked from a replay, the context
// the script saw, the trace and span ids in the outcome lines; a malformed
// traceparent starts a new trace and the job runs; a collector that does
// not answer leaves the jobs alone and the dropped spans are counted.
func TestTracing(t *testing.T) {
	s := newStack(t, stackOptions{
		noDaemon: true,
		phpBinds: []string{filepath.Join(repoRoot(t), "integration", "testdata", "php") + ":" + testScripts + ":ro"},
	})
	recv := startOTLPReceiver(t, s.Docker.Client, s.Network)
	otel := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": recv.Endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
	script := map[string]string{"SCRIPT_FILENAME": testScripts + "/trace.php", "MAX_ATTEMPTS": "3"}
	d := s.startDaemon(t, merged(otel, script))

	t.Run("attempts", func(t *testing.T) {
		traceID, parentID := randomHexID(16), randomHexID(8)
		code, out := s.runCaller(t, merged(otel, map[string]string{"TRACEPARENT": "00-" + traceID + "-" + parentID + "-01"}),
			"--type", "flaky", "--json", `{"job":"flaky","fail_until":2}`)
		if code != 0 {
			t.Fatalf("caller: exit %d:\n%s", code, out)
		}
		spans := awaitSpans(t, recv, 4, func(sp receivedSpan) bool { return sp.TraceID == traceID })
		producer := theSpan(t, spans, tracepb.Span_SPAN_KIND_PRODUCER)
		checkProducer(t, producer, parentID)
		attempts := consumerSpans(spans)
		if len(attempts) != 3 {
			t.Fatalf("%d consumer spans, want one per attempt, 3: %+v", len(attempts), attempts)
		}
		for i, sp := range attempts {
			want := []struct {
				outcome string
				status  int64
				code    tracepb.Status_StatusCode
			}{{"retried", 500, tracepb.Status_STATUS_CODE_ERROR}, {"retried", 500, tracepb.Status_STATUS_CODE_ERROR}, {"succeeded", 200, tracepb.Status_STATUS_CODE_UNSET}}[i]
			checkConsumer(t, sp, producer, i+1)
			if sp.Attrs["fpmq.outcome"] != want.outcome || sp.Attrs["fpmq.php_fpm.status"] != want.status || sp.Status != want.code {
				t.Errorf("attempt %d: outcome %v, status %v, span status %v; want %s, %d, %v", i+1, sp.Attrs["fpmq.outcome"], sp.Attrs["fpmq.php_fpm.status"], sp.Status, want.outcome, want.status, want.code)
			}
		}
		id, _ := producer.Attrs["messaging.message.id"].(string)
		checkScriptSaw(t, s.traceRecords(t, id), attempts)
		checkOutcomeLines(t, containerLogs(t, d), id, attempts)
	})

	t.Run("dead letter and replay", func(t *testing.T) {
		traceID := randomHexID(16)
		code, out := s.runCaller(t, merged(otel, map[string]string{"TRACEPARENT": "00-" + traceID + "-" + randomHexID(8) + "-01"}),
			"--json", `{"job":"doomed","status":400}`)
		if code != 0 {
			t.Fatalf("caller: exit %d:\n%s", code, out)
		}
		spans := awaitSpans(t, recv, 2, func(sp receivedSpan) bool { return sp.TraceID == traceID })
		producer := theSpan(t, spans, tracepb.Span_SPAN_KIND_PRODUCER)
		dead := theSpan(t, spans, tracepb.Span_SPAN_KIND_CONSUMER)
		if dead.Attrs["fpmq.outcome"] != "dead-lettered" || dead.Attrs["fpmq.reason"] != "rejected" || dead.Status != tracepb.Status_STATUS_CODE_ERROR {
			t.Errorf("dead-lettered attempt: %+v", dead)
		}
		// The dead letter keeps the producer's context.
		eventually(t, settleTimeout, "the job in the dead-letter queue", func() bool { return s.queue(t, deadQueue).Ready == 1 })
		if tp := s.peekDeadTraceparent(t); tp != "00-"+traceID+"-"+producer.SpanID+"-01" {
			t.Errorf("dead letter's traceparent %q, want the producer span's", tp)
		}
		if code, out, errOut := s.dead(t, "replay", "--all"); code != 0 {
			t.Fatalf("dead replay --all: exit %d: %s %s", code, out, errOut)
		}
		replayed := awaitSpans(t, recv, 1, func(sp receivedSpan) bool {
			return len(sp.Links) == 1 && sp.Links[0].TraceID == traceID
		})[0]
		link := replayed.Links[0]
		if link.SpanID != producer.SpanID || link.Attrs["fpmq.link.type"] != "replay-of" || replayed.TraceID == traceID || replayed.ParentSpanID != "" {
			t.Errorf("replayed job's span: %+v, want a new trace's root linked (replay-of) to the producer span %s", replayed, producer.SpanID)
		}
		id, _ := producer.Attrs["messaging.message.id"].(string)
		eventually(t, settleTimeout, "the replayed job ran", func() bool { return len(s.traceRecords(t, id)) == 2 })
		if tp := s.traceRecords(t, id)[1].Traceparent; tp != "00-"+replayed.TraceID+"-"+replayed.SpanID+"-01" {
			t.Errorf("the replayed job's script saw %q, want its span's context", tp)
		}
	})

	t.Run("malformed traceparent", func(t *testing.T) {
		id := "malformed-" + randomHexID(4)
		msg := stack.Job(id, []byte(`{"job":"malformed"}`))
		msg.Headers = amqp.Table{"traceparent": "00-not-a-trace-context-01", "tracestate": "a=b"}
		s.publishMessages(t, jobQueue, msg)
		sp := awaitSpans(t, recv, 1, func(sp receivedSpan) bool { return sp.Attrs["messaging.message.id"] == id })[0]
		if sp.ParentSpanID != "" || sp.Attrs["fpmq.outcome"] != "succeeded" {
			t.Errorf("span of a job with a malformed traceparent: %+v, want a new trace's root, succeeded", sp)
		}
		checkScriptSaw(t, s.traceRecords(t, id), []receivedSpan{sp})
		if logs := containerLogs(t, d); !strings.Contains(logs, "malformed traceparent header") {
			t.Error("no line about the malformed traceparent in the daemon's log")
		}
	})

	t.Run("unreachable collector", func(t *testing.T) {
		if err := s.Remove(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		down := s.startDaemon(t, merged(script, map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT":    closedEndpoint(t, s.Docker.Client, s.Network),
			"OTEL_BSP_MAX_QUEUE_SIZE":        "4",
			"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "2",
			"OTEL_BSP_SCHEDULE_DELAY":        "100",
			"OTEL_BSP_EXPORT_TIMEOUT":        "1000",
		}))
		const n = 100
		bodies := make([][]byte, n)
		for i := range bodies {
			bodies[i] = []byte(`{"job":"unreached"}`)
		}
		start := time.Now()
		s.publish(t, bodies...)
		eventually(t, settleTimeout, fmt.Sprintf("%d jobs succeeded", n), func() bool {
			return scrape(t, down)[series("fpmq_jobs_succeeded_total", jobQueue)] == n
		})
		t.Logf("%d jobs ran in %s with the collector down", n, time.Since(start).Round(time.Millisecond))
		m := scrape(t, down)
		dropped := m[series("fpmq_trace_spans_dropped_total", jobQueue, "reason", "queue_full")] + m[series("fpmq_trace_spans_dropped_total", jobQueue, "reason", "export_failed")]
		if dropped == 0 || m[series("fpmq_trace_spans_exported_total", jobQueue)] != 0 || m[series("fpmq_jobs_retried_total", jobQueue)] != 0 {
			t.Errorf("dropped %v, exported %v, retried %v: want spans dropped, none exported, no job retried", dropped,
				m[series("fpmq_trace_spans_exported_total", jobQueue)], m[series("fpmq_jobs_retried_total", jobQueue)])
		}
	})
}

// merged returns the union of the maps, the later ones winning.
func merged(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

// randomHexID returns n random bytes in lowercase hex: a trace id (16) or
// a span id (8).
func randomHexID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// awaitSpans waits until the receiver has n spans that keep keeps, and
// returns them.
func awaitSpans(t *testing.T, r *otlpReceiver, n int, keep func(receivedSpan) bool) []receivedSpan {
	t.Helper()
	var spans []receivedSpan
	eventually(t, settleTimeout, fmt.Sprintf("%d spans received", n), func() bool {
		spans = r.Spans(keep)
		return len(spans) >= n
	})
	if len(spans) != n {
		t.Fatalf("%d spans received, want %d: %+v", len(spans), n, spans)
	}
	return spans
}

// theSpan returns the one span of kind among spans.
func theSpan(t *testing.T, spans []receivedSpan, kind tracepb.Span_SpanKind) receivedSpan {
	t.Helper()
	var found []receivedSpan
	for _, sp := range spans {
		if sp.Kind == kind {
			found = append(found, sp)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans of kind %v, want 1: %+v", len(found), kind, spans)
	}
	return found[0]
}

// consumerSpans returns the daemon's spans among spans, by attempt.
func consumerSpans(spans []receivedSpan) []receivedSpan {
	var out []receivedSpan
	for _, sp := range spans {
		if sp.Kind == tracepb.Span_SPAN_KIND_CONSUMER {
			out = append(out, sp)
		}
	}
	slices.SortFunc(out, func(a, b receivedSpan) int {
		x, _ := a.Attrs["fpmq.attempt"].(int64)
		y, _ := b.Attrs["fpmq.attempt"].(int64)
		return int(x - y)
	})
	return out
}

// checkProducer checks the caller's span of a job: a child of parentID,
// with the messaging attributes of a publication to the job queue.
func checkProducer(t *testing.T, sp receivedSpan, parentID string) {
	t.Helper()
	if sp.Service != "fpmq-caller" || sp.Name != "send "+jobQueue || sp.ParentSpanID != parentID {
		t.Errorf("producer span: service %q, name %q, parent %q; want fpmq-caller, send %s, %s", sp.Service, sp.Name, sp.ParentSpanID, jobQueue, parentID)
	}
	for k, v := range map[string]any{"messaging.system": "rabbitmq", "messaging.operation.type": "send", "messaging.destination.name": jobQueue} {
		if sp.Attrs[k] != v {
			t.Errorf("producer span: %s = %v, want %v", k, sp.Attrs[k], v)
		}
	}
	if id, _ := sp.Attrs["messaging.message.id"].(string); len(id) != 32 {
		t.Errorf("producer span: messaging.message.id %v, want the caller's 32 hex digits", sp.Attrs["messaging.message.id"])
	}
}

// checkConsumer checks the daemon's span of attempt: a child of the
// producer's span, with the messaging attributes of processing the job
// and fpmq's.
func checkConsumer(t *testing.T, sp, producer receivedSpan, attempt int) {
	t.Helper()
	if sp.Service != "fpmq-daemon" || sp.Name != "process "+jobQueue || sp.ParentSpanID != producer.SpanID {
		t.Errorf("attempt %d: service %q, name %q, parent %q; want fpmq-daemon, process %s, the producer span %s", attempt, sp.Service, sp.Name, sp.ParentSpanID, jobQueue, producer.SpanID)
	}
	for k, v := range map[string]any{
		"messaging.system": "rabbitmq", "messaging.operation.type": "process", "messaging.destination.name": jobQueue,
		"messaging.message.id": producer.Attrs["messaging.message.id"], "fpmq.attempt": int64(attempt),
	} {
		if sp.Attrs[k] != v {
			t.Errorf("attempt %d: %s = %v, want %v", attempt, k, sp.Attrs[k], v)
		}
	}
	w, ok := sp.Attrs["fpmq.queue.wait_ms"].(int64)
	if !ok || w < 0 {
		t.Errorf("attempt %d: fpmq.queue.wait_ms = %v, want a wait in ms", attempt, sp.Attrs["fpmq.queue.wait_ms"])
	}
	// The first attempt waited from the publication, just before the
	// producer's span began: measured in whole seconds (the AMQP
	// timestamp) rather than from timestamp_in_ms, it would read up to a
	// second longer.
	if most := sp.Start.Sub(producer.Start) + 50*time.Millisecond; attempt == 1 && ok && time.Duration(w)*time.Millisecond > most {
		t.Errorf("attempt 1: fpmq.queue.wait_ms = %d, more than the %v from the producer's span to this one", w, most)
	}
}

// checkScriptSaw checks that each run of the script saw its attempt
// span's context in HTTP_TRACEPARENT.
func checkScriptSaw(t *testing.T, runs []traceRecord, attempts []receivedSpan) {
	t.Helper()
	if len(runs) != len(attempts) {
		t.Fatalf("the script ran %d times, want %d: %+v", len(runs), len(attempts), runs)
	}
	for i, run := range runs {
		if want := "00-" + attempts[i].TraceID + "-" + attempts[i].SpanID + "-01"; run.Traceparent != want {
			t.Errorf("run %d: the script saw HTTP_TRACEPARENT %q, want %q", i+1, run.Traceparent, want)
		}
	}
}

// checkOutcomeLines checks that the daemon's outcome line of each attempt
// of job id carries its span's trace and span ids.
func checkOutcomeLines(t *testing.T, logs, id string, attempts []receivedSpan) {
	t.Helper()
	var got []string
	for _, line := range strings.Split(logs, "\n") {
		var l struct {
			MessageID string `json:"message_id"`
			Outcome   string `json:"outcome"`
			TraceID   string `json:"trace_id"`
			SpanID    string `json:"span_id"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.MessageID == id && l.Outcome != "" {
			got = append(got, l.TraceID+"/"+l.SpanID)
		}
	}
	var want []string
	for _, sp := range attempts {
		want = append(want, sp.TraceID+"/"+sp.SpanID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("outcome lines' trace_id/span_id %v, want %v", got, want)
	}
}

// traceRecords returns the runs of job id that trace.php recorded, in order.
func (s *testStack) traceRecords(t *testing.T, id string) []traceRecord {
	t.Helper()
	lines, err := s.LogLines(context.Background(), traceScriptLog)
	if err != nil {
		t.Fatal(err)
	}
	var out []traceRecord
	for _, line := range lines {
		var r traceRecord
		if json.Unmarshal([]byte(line), &r) == nil && r.ID == id {
			out = append(out, r)
		}
	}
	return out
}

// peekDeadTraceparent returns the traceparent header of the first dead
// letter, leaving it in its queue.
func (s *testStack) peekDeadTraceparent(t *testing.T) string {
	t.Helper()
	ch := s.adminChannel(t)
	d, ok, err := ch.Get(deadQueue, false) // false: acknowledge by hand
	if err != nil || !ok {
		t.Fatalf("get from %s: %v %v", deadQueue, ok, err)
	}
	defer d.Nack(false, true) // false: this one; true: requeue
	tp, _ := d.Headers["traceparent"].(string)
	return tp
}
